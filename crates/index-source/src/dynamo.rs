//! A live DynamoDB index table read with a parallel Scan.
//!
//! Each Scan segment (`Segment`/`TotalSegments`) is one [`SegmentInfo`]; pages are
//! fetched on the async runtime by one task per open segment and handed to the reading
//! thread through a two-page channel, so reading stays ahead of processing without
//! unbounded buffering. Only the key attributes are projected (the value is never
//! needed; Cortex also issued one Query per series, which doubles the reads; we don't).
//! Throttling and transient errors are retried with jittered exponential backoff here
//! (the SDK's own retries are off so every throttle is counted).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest,
    ReturnConsumedCapacity, ScalarAttributeType, WriteRequest,
};
use backon::{ExponentialBuilder, Retryable};
use tokio::sync::mpsc;

use crate::{
    Cursor, IndexRow, IndexSource, Page, PageChannelReader, SegmentInfo, SegmentReader,
    SourceError, TableInfo,
};

/// Connection and scan settings.
#[derive(Debug, Clone)]
pub struct DynamoOptions {
    /// AWS region.
    pub region: String,
    /// Endpoint override (dynalite, DynamoDB Local, VPC endpoints); `None` = AWS.
    pub endpoint: Option<String>,
    /// Scan segments per table (DynamoDB `TotalSegments`).
    pub segments: usize,
    /// Items per Scan request (`Limit`); `None` = DynamoDB's 1 MB pages.
    pub page_size: Option<i32>,
    /// Attempts per request for throttling and transient errors.
    pub max_attempts: usize,
    /// First retry delay (doubles up to `max_backoff`, with jitter).
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Timeout of one request attempt.
    pub request_timeout: Duration,
    /// Static credentials (access key ID, secret); `None` = the standard AWS chain.
    pub static_credentials: Option<(String, String)>,
}

impl Default for DynamoOptions {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            endpoint: None,
            segments: 8,
            page_size: None,
            max_attempts: 10,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(20),
            request_timeout: Duration::from_secs(30),
            static_credentials: None,
        }
    }
}

/// The live DynamoDB source.
#[derive(Debug, Clone)]
pub struct DynamoSource {
    client: Client,
    opts: DynamoOptions,
    runtime: tokio::runtime::Handle,
}

const THROTTLE_CODES: [&str; 5] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
];

/// Whether a failed request is worth another attempt, and whether it was a throttle.
fn classify<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> (bool, bool) {
    match e {
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or("");
            let throttled = THROTTLE_CODES.contains(&code);
            (throttled, throttled && code != "InternalServerError")
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            (true, false)
        }
        _ => (false, false),
    }
}

fn describe_error<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: &SdkError<E, R>,
) -> String {
    match e {
        SdkError::ServiceError(s) => format!(
            "{}: {}",
            s.err().code().unwrap_or("error"),
            s.err().message().unwrap_or("")
        ),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}

impl DynamoSource {
    /// Builds the client from the standard AWS configuration chain (environment,
    /// profile, instance role) plus the region and endpoint override.
    pub async fn connect(opts: DynamoOptions) -> Result<Self, SourceError> {
        if opts.segments == 0 {
            return Err(SourceError::Dynamo {
                operation: "Scan",
                table: String::new(),
                message: "segments must be at least 1".into(),
            });
        }
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(opts.region.clone()))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(opts.request_timeout)
                    .connect_timeout(Duration::from_secs(10))
                    .build(),
            );
        if let Some(ep) = &opts.endpoint {
            loader = loader.endpoint_url(ep);
        }
        if let Some((id, secret)) = &opts.static_credentials {
            loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                id.clone(),
                secret.clone(),
                None,
                None,
                "blocksconvert",
            ));
        }
        let config = loader.load().await;
        Ok(Self {
            client: Client::new(&config),
            opts,
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// The SDK client (tests use it to create and load tables).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.opts.min_backoff)
            .with_max_delay(self.opts.max_backoff)
            .with_max_times(self.opts.max_attempts.saturating_sub(1))
            .with_jitter()
    }
}

fn note_retry(operation: &'static str, throttled: bool, message: &str, delay: Duration) {
    metrics::counter!("cortex_blocksconvert_scanner_dynamodb_retries_total", "operation" => operation)
        .increment(1);
    if throttled {
        metrics::counter!("cortex_blocksconvert_scanner_dynamodb_throttled_total", "operation" => operation)
            .increment(1);
    }
    tracing::warn!(
        operation,
        throttled,
        error = message,
        ?delay,
        "DynamoDB request failed, retrying"
    );
}

#[async_trait::async_trait]
impl IndexSource for DynamoSource {
    fn index_stores(&self) -> &'static [&'static str] {
        crate::DYNAMO_STORES
    }

    fn describe(&self) -> String {
        match &self.opts.endpoint {
            Some(ep) => format!("dynamodb://{} ({ep})", self.opts.region),
            None => format!("dynamodb://{}", self.opts.region),
        }
    }

    async fn tables(&self) -> Result<Vec<TableInfo>, SourceError> {
        let mut names = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let req = || async {
                self.client
                    .list_tables()
                    .set_exclusive_start_table_name(start.clone())
                    .send()
                    .await
            };
            let out = req
                .retry(self.backoff())
                .when(|e| classify(e).0)
                .notify(|e, d| note_retry("ListTables", classify(e).1, &describe_error(e), d))
                .await
                .map_err(|e| SourceError::Dynamo {
                    operation: "ListTables",
                    table: String::new(),
                    message: describe_error(&e),
                })?;
            names.extend(out.table_names().iter().cloned());
            match out.last_evaluated_table_name() {
                Some(n) => start = Some(n.to_owned()),
                None => break,
            }
        }
        Ok(names
            .into_iter()
            .map(|name| TableInfo {
                name,
                approx_items: None,
            })
            .collect())
    }

    async fn segments(&self, table: &str) -> Result<Vec<SegmentInfo>, SourceError> {
        // DescribeTable's ItemCount is refreshed about every six hours: a progress hint only.
        let req = || async { self.client.describe_table().table_name(table).send().await };
        let out = req
            .retry(self.backoff())
            .when(|e| classify(e).0)
            .notify(|e, d| note_retry("DescribeTable", classify(e).1, &describe_error(e), d))
            .await
            .map_err(|e| SourceError::Dynamo {
                operation: "DescribeTable",
                table: table.to_owned(),
                message: describe_error(&e),
            })?;
        let items = out
            .table()
            .and_then(|t| t.item_count())
            .map(|n| n.max(0) as u64);
        let n = self.opts.segments;
        Ok((0..n)
            .map(|index| SegmentInfo {
                index,
                name: format!("{table} segment {index}/{n}"),
                approx_items: items.map(|i| i / n as u64),
            })
            .collect())
    }

    fn open_segment(
        &self,
        table: &str,
        segment: &SegmentInfo,
        cursor: &Cursor,
    ) -> Result<Box<dyn SegmentReader>, SourceError> {
        let start = match cursor {
            Cursor::Start => None,
            Cursor::End => {
                return Ok(Box::new(PageChannelReader::new(
                    None,
                    stopped(&segment.name),
                )));
            }
            Cursor::DynamoKey { hash, range } => Some(HashMap::from([
                ("h".to_owned(), AttributeValue::S(hash.clone())),
                ("r".to_owned(), AttributeValue::B(Blob::new(range.clone()))),
            ])),
            Cursor::Items(_) | Cursor::RowKey { .. } => {
                return Err(SourceError::BadCursor {
                    segment: segment.name.clone(),
                    cursor: cursor.clone(),
                });
            }
        };
        let (tx, rx) = mpsc::channel(2);
        let this = self.clone();
        let table = table.to_owned();
        let index = segment.index;
        self.runtime.spawn(async move {
            let mut start = start;
            loop {
                let result = this.scan_page(&table, index, start.take()).await;
                let (page, next) = match result {
                    Ok(v) => v,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                let last = next.is_none();
                if tx.send(Ok(page)).await.is_err() || last {
                    return;
                }
                start = next;
            }
        });
        Ok(Box::new(PageChannelReader::new(
            Some(rx),
            stopped(&segment.name),
        )))
    }
}

type Key = HashMap<String, AttributeValue>;

/// The error of a page task that stopped before the segment's last page.
fn stopped(segment: &str) -> SourceError {
    SourceError::Dynamo {
        operation: "Scan",
        table: segment.to_owned(),
        message: "the page fetch task stopped before the last page".into(),
    }
}

fn build_error(table: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::Dynamo {
        operation: "CreateTable",
        table: table.to_owned(),
        message: e.to_string(),
    }
}

impl DynamoSource {
    /// Creates an index table with Cortex's key schema (`h` string hash key, `r` binary
    /// range key), on-demand billing. For restoring an export into a DynamoDB-compatible
    /// server (dry runs, tests, benchmarks).
    pub async fn create_index_table(&self, table: &str) -> Result<(), SourceError> {
        let attr = |name: &str, t: ScalarAttributeType| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(t)
                .build()
                .map_err(|e| build_error(table, e))
        };
        let key = |name: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(t)
                .build()
                .map_err(|e| build_error(table, e))
        };
        self.client
            .create_table()
            .table_name(table)
            .attribute_definitions(attr("h", ScalarAttributeType::S)?)
            .attribute_definitions(attr("r", ScalarAttributeType::B)?)
            .key_schema(key("h", KeyType::Hash)?)
            .key_schema(key("r", KeyType::Range)?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .map_err(|e| build_error(table, describe_error(&e)))?;
        Ok(())
    }

    /// Writes items with BatchWriteItem (25 per request), resending unprocessed items.
    pub async fn put_items(
        &self,
        table: &str,
        items: &[cortex_index::dynamo_export::IndexItem],
    ) -> Result<(), SourceError> {
        for batch in items.chunks(25) {
            let mut requests = Vec::with_capacity(batch.len());
            for i in batch {
                let mut put = PutRequest::builder()
                    .item("h", AttributeValue::S(i.hash.clone()))
                    .item("r", AttributeValue::B(Blob::new(i.range.clone())));
                if let Some(v) = &i.value {
                    put = put.item("c", AttributeValue::B(Blob::new(v.clone())));
                }
                let put = put.build().map_err(|e| build_error(table, e))?;
                requests.push(WriteRequest::builder().put_request(put).build());
            }
            while !requests.is_empty() {
                let req = || async {
                    self.client
                        .batch_write_item()
                        .request_items(table, requests.clone())
                        .send()
                        .await
                };
                let out = req
                    .retry(self.backoff())
                    .when(|e| classify(e).0)
                    .notify(|e, d| {
                        note_retry("BatchWriteItem", classify(e).1, &describe_error(e), d)
                    })
                    .await
                    .map_err(|e| SourceError::Dynamo {
                        operation: "BatchWriteItem",
                        table: table.to_owned(),
                        message: describe_error(&e),
                    })?;
                requests = out
                    .unprocessed_items()
                    .and_then(|m| m.get(table).cloned())
                    .unwrap_or_default();
            }
        }
        Ok(())
    }
}

impl DynamoSource {
    async fn scan_page(
        &self,
        table: &str,
        segment: usize,
        start: Option<Key>,
    ) -> Result<(Page, Option<Key>), SourceError> {
        let req = || async {
            self.client
                .scan()
                .table_name(table)
                .segment(segment as i32)
                .total_segments(self.opts.segments as i32)
                .projection_expression("#h, #r")
                .expression_attribute_names("#h", "h")
                .expression_attribute_names("#r", "r")
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .set_exclusive_start_key(start.clone())
                .set_limit(self.opts.page_size)
                .send()
                .await
        };
        let out = req
            .retry(self.backoff())
            .when(|e| classify(e).0)
            .notify(|e, d| note_retry("Scan", classify(e).1, &describe_error(e), d))
            .await
            .map_err(|e| SourceError::Dynamo {
                operation: "Scan",
                table: table.to_owned(),
                message: describe_error(&e),
            })?;
        let bad = |what: &str| SourceError::Dynamo {
            operation: "Scan",
            table: table.to_owned(),
            message: format!("item {what}"),
        };
        let mut rows = Vec::with_capacity(out.items().len());
        for item in out.items() {
            let hash = match item.get("h") {
                Some(AttributeValue::S(s)) => s.clone(),
                _ => return Err(bad("without a string attribute h")),
            };
            let range = match item.get("r") {
                Some(AttributeValue::B(b)) => b.as_ref().to_vec(),
                _ => return Err(bad(&format!("{hash} without a binary attribute r"))),
            };
            rows.push(IndexRow { hash, range });
        }
        let next = out.last_evaluated_key().cloned();
        let cursor = match &next {
            None => Cursor::End,
            Some(k) => match (k.get("h"), k.get("r")) {
                (Some(AttributeValue::S(h)), Some(AttributeValue::B(r))) => Cursor::DynamoKey {
                    hash: h.clone(),
                    range: r.as_ref().to_vec(),
                },
                _ => return Err(bad("LastEvaluatedKey without h and r")),
            },
        };
        let consumed_capacity = out
            .consumed_capacity()
            .and_then(|c| c.capacity_units())
            .unwrap_or(0.0);
        Ok((
            Page {
                rows,
                cursor,
                consumed_capacity,
            },
            next,
        ))
    }
}
