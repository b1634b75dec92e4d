//! The scheduler's gRPC protocol (`proto/scheduler.proto`), generated at build time.
//! `NextPlan` is wire-compatible with Cortex blocksconvert; the lease RPCs are ours.

#![allow(missing_docs, clippy::all)]

/// Generated messages, client and server.
pub mod blocksconvert {
    tonic::include_proto!("blocksconvert");
}

pub use blocksconvert::*;

/// The tool a scheduler serves; builders and cleaners never share a queue (W15).
pub const TOOL_BUILDER: &str = "builder";

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    // Wire vectors from the plan-protocol spec §10: Cortex builders must understand us.
    #[test]
    fn next_plan_messages_match_cortex_bytes() {
        let req = NextPlanRequest {
            name: "builder-0".into(),
            tool: String::new(),
        };
        assert_eq!(hex::encode(req.encode_to_vec()), "0a096275696c6465722d30");
        let resp = NextPlanResponse {
            plan_file: "migration/user1/18518.plan.snappy".into(),
            progress_file: "migration/user1/18518.starting.1600000000".into(),
        };
        let bytes = resp.encode_to_vec();
        assert_eq!(bytes.len(), 78);
        assert_eq!(
            hex::encode(&bytes),
            concat!(
                "0a21",
                "6d6967726174696f6e2f75736572312f31383531382e706c616e2e736e61707079",
                "1229",
                "6d6967726174696f6e2f75736572312f31383531382e7374617274696e672e31363030303030303030"
            )
        );
    }
}
