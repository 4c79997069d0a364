//! Auto-pagination: a list builder becomes a [`Stream`] of its items that follows `nextLink`
//! to the end. The cursors are keyset cursors, stable under concurrent inserts: every item once.

use std::future::Future;

use futures_core::Stream;
use progenitor_client::Error;

/// One page: its items and the next page's link, or the error.
pub type PageResult<T, P> = Result<(Vec<T>, Option<String>), Error<P>>;

/// A list request that can be sent again for the next page. Implemented by the generated
/// builders of every paginated list (`client.list_posts()`, ...).
pub trait Paginated: Clone + Send + Sized {
    type Item: Send;
    type Problem: Send;
    /// The same request for the page at `cursor`.
    fn at_cursor(self, cursor: String) -> Self;
    /// Sends it: the items of the page and the next page's link.
    fn fetch(self) -> impl Future<Output = PageResult<Self::Item, Self::Problem>> + Send;

    /// Every item of the list from this page on, following `nextLink`:
    /// `client.list_posts().limit(100).stream()`. A page that fails (after the client's
    /// retries) ends the stream with its error.
    fn stream(self) -> impl Stream<Item = Result<Self::Item, Error<Self::Problem>>> + Send {
        stream(self)
    }
}

/// The `cursor` of a `nextLink` (`/v1/posts?limit=10&cursor=...`). The builder keeps the other
/// parameters, which `nextLink` repeats.
pub fn next_cursor(next_link: &str) -> Option<String> {
    let query = next_link.split_once('?')?.1;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "cursor")
        .map(|(_, value)| value.replace('+', " "))
        .and_then(|value| percent_decode(&value))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

enum Next<B> {
    Page(B),
    Done,
}

fn stream<B: Paginated>(first: B) -> impl Stream<Item = Result<B::Item, Error<B::Problem>>> + Send {
    use futures_util::{StreamExt, stream};
    stream::unfold(Next::Page(first), |next| async move {
        let Next::Page(builder) = next else {
            return None;
        };
        match builder.clone().fetch().await {
            Ok((items, link)) => {
                let next = match link.as_deref().and_then(next_cursor) {
                    Some(cursor) => Next::Page(builder.at_cursor(cursor)),
                    None => Next::Done,
                };
                Some((stream::iter(items.into_iter().map(Ok)).left_stream(), next))
            }
            Err(error) => Some((stream::iter([Err(error)]).right_stream(), Next::Done)),
        }
    })
    .flatten()
}

/// Implements [`Paginated`] for a version's generated list builders:
/// `v1: ListPosts => Post, ...;` (builder and item type names in `crate::v1::{builder, types}`).
#[macro_export]
#[doc(hidden)]
macro_rules! paginated {
    ($module:ident: $($builder:ident => $item:ident),* $(,)?) => {$(
        impl $crate::runtime::Paginated for $crate::$module::builder::$builder<'_> {
            type Item = $crate::$module::types::$item;
            type Problem = $crate::$module::types::Problem;
            fn at_cursor(self, cursor: String) -> Self {
                self.cursor(cursor)
            }
            async fn fetch(self) -> $crate::runtime::PageResult<Self::Item, Self::Problem> {
                let page = self.send().await?.into_inner();
                Ok((page.data, page.next_link))
            }
        }
    )*};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_comes_from_next_link() {
        assert_eq!(
            next_cursor("/v1/posts?limit=10&cursor=cG9zdDox"),
            Some("cG9zdDox".into())
        );
        assert_eq!(
            next_cursor("/v1/posts?cursor=a%2Db&status=all"),
            Some("a-b".into())
        );
        assert_eq!(next_cursor("/v1/posts?limit=10"), None);
        assert_eq!(next_cursor("/v1/posts"), None);
    }
}
