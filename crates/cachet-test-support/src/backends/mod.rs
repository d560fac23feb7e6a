//! Real shared-storage servers for the tier tests: `redis-server` (one node, or a 3-node Redis
//! Cluster made with `redis-cli --cluster create`) and an S3-compatible server (moto in server
//! mode), each in its own scratch directory, killed on drop.
//!
//! Tools come from `CACHET_TEST_REDIS_SERVER` / `CACHET_TEST_REDIS_CLI` / `CACHET_TEST_MOTO`,
//! else scripts/setup.d/50-storage.sh's install, else PATH; a missing tool fails the test.
//! Each peer counts as started when it says so in its own log, never on a connect (which could
//! reach another process on the port), and one that exits first fails with that log.

mod peer;
mod redis;
mod s3;

pub use redis::{redis_cli, RedisCluster, RedisServer};
pub use s3::{S3Key, S3Server, S3_ENV};
