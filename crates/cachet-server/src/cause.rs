//! An error with its causes, as one log field. A leaf module: the storage layer and the HTTP
//! layer both log causes, and neither may import the other's error module for it.

/// An error and its causes, joined by ": ".
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
