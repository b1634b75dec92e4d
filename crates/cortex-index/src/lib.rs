//! The Cortex chunk index (schema v9, v10, v11) as far as a converter needs it:
//!
//! * [`schema`]: the `schema.yaml` period configs and table naming;
//! * [`series_id`]: series IDs, value hashes and row shards;
//! * [`entry`]: index rows written per chunk and the series→chunk row parser;
//! * [`tenant`]: which tenant IDs and day indexes may name plans and blocks;
//! * [`dynamo_export`]: the DynamoDB "export to S3" layout (DYNAMODB_JSON), written and read.

pub mod dynamo_export;
pub mod entry;
pub mod schema;
pub mod series_id;
pub mod tenant;

/// Milliseconds per UTC day.
pub const DAY_MS: i64 = 86_400_000;
