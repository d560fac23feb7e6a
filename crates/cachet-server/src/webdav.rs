//! The sliver of WebDAV that sccache (through opendal) needs: PROPFIND answers and MKCOL.
//!
//! Collections are virtual here: objects live in a flat namespace and `/` inside a key is just
//! a character, so every collection path "exists" and MKCOL has nothing to do. opendal stats
//! the endpoint and each parent with `PROPFIND` (`Depth: 0`) before a write, creating missing
//! ones with `MKCOL`; it needs a `207 Multi-Status` whose `propstat` carries
//! `getlastmodified`, and `getcontentlength` for files. We never list (`Depth: 1` answers the
//! collection alone), since keys are hashed on disk and listing is not needed by any client.
//!
//! The request body (which properties are wanted) is ignored: we always send the same small
//! set. The `href` echoes the request path, XML-escaped.

use std::time::SystemTime;

/// A `207 Multi-Status` body describing one collection.
pub fn collection(href: &str) -> String {
    multistatus(
        href,
        "<D:resourcetype><D:collection/></D:resourcetype>",
        SystemTime::UNIX_EPOCH,
    )
}

/// A `207 Multi-Status` body describing one file of `size` bytes.
pub fn file(href: &str, size: u64, modified: SystemTime) -> String {
    multistatus(
        href,
        &format!(
            "<D:resourcetype/><D:getcontentlength>{size}</D:getcontentlength>\
             <D:getcontenttype>application/octet-stream</D:getcontenttype>"
        ),
        modified,
    )
}

fn multistatus(href: &str, props: &str, modified: SystemTime) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <D:multistatus xmlns:D=\"DAV:\"><D:response><D:href>{}</D:href>\
         <D:propstat><D:prop>{props}<D:getlastmodified>{}</D:getlastmodified></D:prop>\
         <D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>\n",
        escape(href),
        httpdate::fmt_http_date(modified),
    )
}

/// Escapes the five XML special characters (the same escaping as the dashboard's HTML).
pub use crate::http_util::escape_markup as escape;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// No href can break out of its element.
        #[test]
        fn href_cannot_inject_markup(href in ".{0,100}") {
            let body = collection(&href);
            let inner = body
                .split_once("<D:href>").map(|(_, r)| r)
                .and_then(|r| r.split_once("</D:href>")).map(|(h, _)| h)
                .unwrap_or("<");
            prop_assert!(!inner.contains('<') && !inner.contains('>'));
        }
    }
}
