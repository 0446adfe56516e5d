//! Hot write statements that diesel would parse and plan again on every execution, written as
//! fixed SQL text so that each connection prepares them once.
//!
//! diesel never caches an `UPDATE` (an `AsChangeset` with `Option` fields may skip columns, so
//! the text can vary), an `ON CONFLICT … DO UPDATE`, or an `IN` over a list, and it decides that
//! by walking the statement — through any wrapper, since its `QueryFragment` for `&T` does not
//! forward an override. Under the delivery load of issue 7 that made SQLite parse the outbox's,
//! the links' and the users' update statements on every write: a fifth to a third of the writer
//! thread's time. A [`Fixed`] statement is one `&'static str` with `?` where its binds go, filed
//! in the statement cache under a marker type; diesel turns each `?` into the engine's own
//! placeholder (`$n` on PostgreSQL), so one text serves both engines.
//!
//! The text must be valid on SQLite and PostgreSQL alike — every statement here runs in the
//! store's tests on both — except a statement with an array bind ([`Val::TextArray`],
//! [`Val::OptTextArray`]), which is PostgreSQL's alone (SQLite refuses it before sending it).

use std::marker::PhantomData;

use diesel::QueryResult;
use diesel::RunQueryDsl;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
use diesel::sqlite::Sqlite;

/// One bind value, with the SQL type it is sent as.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
    OptBool(Option<bool>),
    /// A `text[]` (PostgreSQL only).
    TextArray(&'a [&'a str]),
    /// A `text[]` whose elements may be NULL (PostgreSQL only).
    OptTextArray(&'a [Option<&'a str>]),
    /// A `bigint[]` (PostgreSQL only).
    IntArray(&'a [i64]),
    /// A `boolean[]` whose elements may be NULL (PostgreSQL only).
    OptBoolArray(&'a [Option<bool>]),
}

/// A statement of fixed text (see the module doc), cached under the marker `M`: declare one
/// zero-sized type per statement.
pub(crate) struct Fixed<'a, M, const N: usize> {
    sql: &'static str,
    binds: [Val<'a>; N],
    marker: PhantomData<M>,
}

/// `sql` with `N` `?` placeholders, bound in order to `binds`.
pub(crate) fn fixed<'a, M: 'static, const N: usize>(sql: &'static str, binds: [Val<'a>; N]) -> Fixed<'a, M, N> {
    debug_assert_eq!(sql.matches('?').count(), N, "placeholders and binds of {sql}");
    Fixed { sql, binds, marker: PhantomData }
}

impl<M: 'static, const N: usize> QueryId for Fixed<'_, M, N> {
    type QueryId = M;
    const HAS_STATIC_QUERY_ID: bool = true;
}

macro_rules! walk_for {
    ($db:ty) => {
        impl<M, const N: usize> QueryFragment<$db> for Fixed<'_, M, N> {
            fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, $db>) -> QueryResult<()> {
                let mut pieces = self.sql.split('?');
                if let Some(first) = pieces.next() {
                    out.push_sql(first);
                }
                for (piece, bind) in pieces.zip(self.binds.iter()) {
                    match bind {
                        Val::Text(v) => out.push_bind_param::<Text, _>(*v)?,
                        Val::OptText(v) => out.push_bind_param::<Nullable<Text>, _>(v)?,
                        Val::Int(v) => out.push_bind_param::<BigInt, _>(v)?,
                        Val::OptInt(v) => out.push_bind_param::<Nullable<BigInt>, _>(v)?,
                        Val::OptBool(v) => out.push_bind_param::<Nullable<Bool>, _>(v)?,
                        Val::TextArray(v) => <$db as ArrayBinds>::texts(&mut out, v)?,
                        Val::OptTextArray(v) => <$db as ArrayBinds>::nullable_texts(&mut out, v)?,
                        Val::IntArray(v) => <$db as ArrayBinds>::ints(&mut out, v)?,
                        Val::OptBoolArray(v) => <$db as ArrayBinds>::nullable_bools(&mut out, v)?,
                    }
                    out.push_sql(piece);
                }
                Ok(())
            }
        }
    };
}

/// How an engine binds the array values: PostgreSQL as `text[]`; SQLite has no arrays.
trait ArrayBinds: diesel::backend::Backend + Sized {
    fn texts<'b>(out: &mut AstPass<'_, 'b, Self>, v: &'b [&'b str]) -> QueryResult<()>;
    fn nullable_texts<'b>(out: &mut AstPass<'_, 'b, Self>, v: &'b [Option<&'b str>]) -> QueryResult<()>;
    fn ints<'b>(out: &mut AstPass<'_, 'b, Self>, v: &'b [i64]) -> QueryResult<()>;
    fn nullable_bools<'b>(out: &mut AstPass<'_, 'b, Self>, v: &'b [Option<bool>]) -> QueryResult<()>;
}

impl ArrayBinds for Pg {
    fn texts<'b>(out: &mut AstPass<'_, 'b, Self>, v: &'b [&'b str]) -> QueryResult<()> {
        out.push_bind_param::<Array<Text>, [&str]>(v)
    }
    fn nullable_texts<'b>(out: &mut AstPass<'_, 'b, Self>, v: &'b [Option<&'b str>]) -> QueryResult<()> {
        out.push_bind_param::<Array<Nullable<Text>>, [Option<&str>]>(v)
    }
    fn ints<'b>(out: &mut AstPass<'_, 'b, Self>, v: &'b [i64]) -> QueryResult<()> {
        out.push_bind_param::<Array<BigInt>, [i64]>(v)
    }
    fn nullable_bools<'b>(out: &mut AstPass<'_, 'b, Self>, v: &'b [Option<bool>]) -> QueryResult<()> {
        out.push_bind_param::<Array<Nullable<Bool>>, [Option<bool>]>(v)
    }
}

impl ArrayBinds for Sqlite {
    fn texts<'b>(_: &mut AstPass<'_, 'b, Self>, _: &'b [&'b str]) -> QueryResult<()> {
        Err(no_arrays())
    }
    fn nullable_texts<'b>(_: &mut AstPass<'_, 'b, Self>, _: &'b [Option<&'b str>]) -> QueryResult<()> {
        Err(no_arrays())
    }
    fn ints<'b>(_: &mut AstPass<'_, 'b, Self>, _: &'b [i64]) -> QueryResult<()> {
        Err(no_arrays())
    }
    fn nullable_bools<'b>(_: &mut AstPass<'_, 'b, Self>, _: &'b [Option<bool>]) -> QueryResult<()> {
        Err(no_arrays())
    }
}

fn no_arrays() -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError("an array bind is PostgreSQL's alone; SQLite has no arrays".into())
}

walk_for!(Sqlite);
walk_for!(Pg);

impl<M, C, const N: usize> RunQueryDsl<C> for Fixed<'_, M, N> {}

/// A [`Fixed`] statement that returns rows of SQL type `ST`, for `load`.
pub(crate) struct Returning<'a, M, ST, const N: usize> {
    statement: Fixed<'a, M, N>,
    rows: PhantomData<ST>,
}

impl<'a, M, const N: usize> Fixed<'a, M, N> {
    /// This statement, loading rows of SQL type `ST`.
    pub(crate) fn returning<ST>(self) -> Returning<'a, M, ST, N> {
        Returning { statement: self, rows: PhantomData }
    }
}

impl<M: 'static, ST, const N: usize> QueryId for Returning<'_, M, ST, N> {
    type QueryId = M;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<M, ST, const N: usize> diesel::query_builder::Query for Returning<'_, M, ST, N> {
    type SqlType = ST;
}

macro_rules! returning_for {
    ($db:ty) => {
        impl<M, ST, const N: usize> QueryFragment<$db> for Returning<'_, M, ST, N> {
            fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, $db>) -> QueryResult<()> {
                self.statement.walk_ast(out)
            }
        }
    };
}

returning_for!(Sqlite);
returning_for!(Pg);

impl<M, ST, C, const N: usize> RunQueryDsl<C> for Returning<'_, M, ST, N> {}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use diesel::connection::{Connection, InstrumentationEvent, SimpleConnection};
    use diesel::sqlite::SqliteConnection;

    use super::*;

    /// The point of the module: run three times, prepared (and cached) once. A statement diesel
    /// declines to cache is prepared on every run and never reported as cached.
    #[test]
    fn a_fixed_statement_is_prepared_once_per_connection() {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        conn.batch_execute("CREATE TABLE t (k TEXT PRIMARY KEY, v BIGINT, note TEXT)").unwrap();
        let cached = Arc::new(Mutex::new(Vec::<String>::new()));
        let seen = cached.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { sql, .. } = event {
                seen.lock().unwrap().push(sql.to_owned());
            }
        });
        struct Upsert;
        for (i, note) in [(1, Some("a")), (2, None), (3, Some("c"))] {
            let n = fixed::<Upsert, 3>(
                "INSERT INTO t (k, v, note) VALUES (?, ?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v, \
                 note = excluded.note",
                [Val::Text("x"), Val::Int(i), Val::OptText(note)],
            )
            .execute(&mut conn)
            .unwrap();
            assert_eq!(n, 1);
        }
        assert_eq!(cached.lock().unwrap().len(), 1, "prepared once: {:?}", cached.lock().unwrap());
        let (v, note): (i64, Option<String>) = diesel::sql_query("SELECT v, note FROM t WHERE k = 'x'")
            .get_result::<VN>(&mut conn)
            .map(|r| (r.v, r.note))
            .unwrap();
        assert_eq!((v, note.as_deref()), (3, Some("c")));
    }

    #[derive(diesel::QueryableByName)]
    struct VN {
        #[diesel(sql_type = BigInt)]
        v: i64,
        #[diesel(sql_type = Nullable<Text>)]
        note: Option<String>,
    }
}
