//! The `?k=v&k=v` options of a storage URL, percent-decoded: shared by the backends that parse
//! their own URLs ([`super::redis::RedisSpec`], [`super::s3::S3Spec`]). A leaf module.

/// `k=v&k=v`, percent-decoded, in order; a key without `=` has an empty value.
pub fn pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}
