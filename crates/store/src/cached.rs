//! Statements diesel would prepare on every execution, cached like any other.
//!
//! diesel never caches an `UPDATE` (an `AsChangeset` with `Option` fields may skip columns, so the
//! text can vary) nor an `ON CONFLICT … DO UPDATE`, and keys statements without a static query id
//! by their SQL text, built anew for every execution. Under the delivery load of issue 7 that
//! made SQLite parse and plan the outbox's and the links' statements on every write: a fifth of
//! the writer thread's time. [`cached`] wraps a statement whose text is known not to vary and
//! files it under a marker type: diesel then prepares it once per connection.
//!
//! The caller's promise: for one marker, the statement's SQL text is always the same — no
//! `eq_any` over a list whose length varies, no changeset that skips `None` fields (derive
//! `AsChangeset` with `treat_none_as_null = true`), no optional filters.

use std::marker::PhantomData;

use diesel::QueryResult;
use diesel::RunQueryDsl;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};

/// A statement of fixed text, cached under the marker `M` (see the module doc).
pub(crate) struct Cached<M, Q> {
    query: Q,
    marker: PhantomData<M>,
}

/// Files `query` under the marker type `M`: declare one zero-sized type per statement shape.
pub(crate) fn cached<M: 'static, Q>(query: Q) -> Cached<M, Q> {
    Cached { query, marker: PhantomData }
}

impl<M: 'static, Q> QueryId for Cached<M, Q> {
    type QueryId = M;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<M, Q, DB> QueryFragment<DB> for Cached<M, Q>
where
    DB: Backend,
    Q: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.query.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<M, Q, C> RunQueryDsl<C> for Cached<M, Q> {}
