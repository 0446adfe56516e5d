//! The one redaction of a store URL for messages and logs: every place a password can sit in what libpq reads.
//!
//! libpq takes a password from a URI's user info (`user:password@`), from any query parameter
//! whose name, once percent-decoded, is `password` (also `sslpassword`, the client key's), and
//! from a `key=value` connection string. All are hidden; the rest (scheme, user, host, port,
//! database, other parameters) stays, since that is what an operator needs to read. What cannot be
//! parsed is hidden whole rather than guessed at.

/// What a hidden value reads as.
const HIDDEN: &str = "***";
/// What stands for the unreadable rest of a connection string.
const UNREAD: &str = "…";

/// `url` with every password replaced by `***`, for messages, logs and `Debug`. Used wherever a
/// store URL is shown (the CLI's messages too): one function, so the forms it knows cannot drift
/// apart between callers.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        return format!("{scheme}://{}", redact_uri_rest(rest));
    }
    if url.contains('=') {
        return redact_conninfo(url);
    }
    match url.rfind('@') {
        // Not a URI libpq reads, but whatever precedes an `@` may be credentials.
        Some(at) => format!("{HIDDEN}{}", &url[at..]),
        None => url.to_owned(),
    }
}

/// Whether a parameter or keyword names a password (`password`, `sslpassword`, in any case and
/// percent-encoding).
fn is_password_key(key: &str) -> bool {
    percent_decode(key).to_ascii_lowercase().contains("password")
}

/// After `scheme://`: the user info up to the last `@` before the query (a raw `/` or `@` in a
/// password stays inside what is hidden), then each query parameter.
fn redact_uri_rest(rest: &str) -> String {
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let mut out = String::with_capacity(rest.len());
    match before_query.rfind('@') {
        Some(at) => {
            let userinfo = &before_query[..at];
            // The user name ends at the first `:`. Without one, an encoded `%3A` is part of the
            // user name to libpq, but may be a password written the wrong way: hidden too.
            let end = match userinfo.find(':') {
                Some(colon) => Some(colon + 1),
                None => userinfo.to_ascii_lowercase().find("%3a").map(|enc| enc + 3),
            };
            match end {
                Some(end) => {
                    out.push_str(&userinfo[..end]);
                    out.push_str(HIDDEN);
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&before_query[at..]);
        }
        None => out.push_str(before_query),
    }
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _)) if is_password_key(key) => format!("{key}={HIDDEN}"),
                _ => param.to_owned(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

/// A `key = value …` connection string (values optionally single-quoted, `\` escaping), with
/// each password's value hidden. From the first thing that does not parse, the rest is hidden.
fn redact_conninfo(s: &str) -> String {
    let mut shown: Vec<String> = Vec::new();
    let mut chars = s.chars().peekable();
    let skip_spaces = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_spaces(&mut chars);
        if chars.peek().is_none() {
            return shown.join(" ");
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        skip_spaces(&mut chars);
        if chars.next() != Some('=') {
            break;
        }
        skip_spaces(&mut chars);
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => {
                        shown.push(UNREAD.to_owned());
                        return shown.join(" ");
                    }
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        if is_password_key(&key) {
            shown.push(format!("{key}={HIDDEN}"));
        } else if value.is_empty() || value.contains(|c: char| c.is_whitespace() || c == '\'' || c == '\\') {
            shown.push(format!("{key}='{}'", value.replace('\\', "\\\\").replace('\'', "\\'")));
        } else {
            shown.push(format!("{key}={value}"));
        }
    }
    shown.push(UNREAD.to_owned());
    shown.join(" ")
}

/// `%XX` decoded (invalid escapes kept as they are), for comparing parameter names.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                // Two hex digits: at most 255.
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every way libpq takes a password, each checked for the secret's absence and for what
    /// must stay readable (the host, the other parameters).
    #[test]
    fn every_spelling_of_a_password_is_redacted() {
        let cases = [
            // user info, with encoded `:` and `@` inside the user and the password
            ("postgres://app:s3cret@db:5432/scim", "postgres://app:***@db:5432/scim"),
            ("postgres://a%3Ab:s3cret%40x@db/scim", "postgres://a%3Ab:***@db/scim"),
            ("postgres://app%3As3cret@db/scim", "postgres://app%3A***@db/scim"),
            ("postgresql://app:s3c/ret@db/scim", "postgresql://app:***@db/scim"),
            ("postgres://app:s3c@ret@db/scim", "postgres://app:***@db/scim"),
            // query parameters, in any position, any case, percent-encoded keys
            ("postgres://db/scim?password=s3cret", "postgres://db/scim?password=***"),
            (
                "postgres://db/scim?sslmode=require&password=s3cret&connect_timeout=5",
                "postgres://db/scim?sslmode=require&password=***&connect_timeout=5",
            ),
            (
                "postgres://db/scim?sslpassword=s3cret&password=s3cret2",
                "postgres://db/scim?sslpassword=***&password=***",
            ),
            ("postgres://db/scim?PASSWORD=s3cret", "postgres://db/scim?PASSWORD=***"),
            ("postgres://db/scim?%70assword=s3cret", "postgres://db/scim?%70assword=***"),
            ("postgres://db/scim?pass%77ord=s3cret&a=b", "postgres://db/scim?pass%77ord=***&a=b"),
            ("postgres://db/scim?%50%41%53%53%57%4F%52%44=s3cret", "postgres://db/scim?%50%41%53%53%57%4F%52%44=***"),
            (
                "postgres://u:s3cret@db/scim?password=s3cret2&sslpassword=s3cret3",
                "postgres://u:***@db/scim?password=***&sslpassword=***",
            ),
            // key/value connection strings (refused as store.url, but echoed in the refusal)
            ("host=db password=s3cret dbname=scim", "host=db password=*** dbname=scim"),
            ("host=db password = 's3c ret\\' x' user=app", "host=db password=*** user=app"),
            ("host=db sslpassword=s3cret", "host=db sslpassword=***"),
            // nothing to hide
            ("postgres://app@db/scim?sslmode=require", "postgres://app@db/scim?sslmode=require"),
            ("sqlite://data/scimgw.db", "sqlite://data/scimgw.db"),
        ];
        for (url, want) in cases {
            let got = redact_url(url);
            assert_eq!(got, want, "{url}");
            assert!(!got.contains("s3c"), "{url} -> {got}");
        }
        // Whatever cannot be read as either form is not shown at all.
        for garbled in ["password='s3cret", "host=db password s3cret"] {
            assert!(!redact_url(garbled).contains("s3c"), "{garbled}");
        }
    }
}
