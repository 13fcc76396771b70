//! Buildx's own words about a builder that cannot start or connect (TLS refusals, an image
//! that cannot be pulled, nothing listening), read and said in ours: [`explain`],
//! [`connection_error`] (asks the daemon why, through `docker buildx du`), and the
//! error wrapping that creating a builder uses.
//!
//! Here because builds and fan-outs read these words too (`docker::build`,
//! `docker::fanout`), not only the creation of builders.

use std::collections::BTreeMap;

use crate::cmd::{Cmd, Runner};

/// The error a client of builder `name` gets when it connects (`docker buildx du`, read
/// only, 30 s at most, asked up to four times until the words name a known cause);
/// `None` when it connects.
pub(crate) fn connection_error(runner: &Runner, name: &str) -> Option<String> {
    let du = Cmd::new("docker")
        .args(["buildx", "du", "--builder", name])
        .read_only()
        .timeout(std::time::Duration::from_secs(30));
    // With TLS 1.3 the daemon's refusal of a client certificate arrives after the client
    // sent its first request, which then sometimes fails only with `write: broken pipe`:
    // ask again (a tenth of a second each) until the words say why.
    let mut last = None;
    for _ in 0..4 {
        let words = match runner.capture(&du) {
            Ok(_) => return None,
            Err(e) => e
                .tail
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| connection_words(l.trim())),
        };
        let known = words
            .as_deref()
            .is_some_and(|w| explain(w, None, &BTreeMap::new()).is_some());
        last = words;
        if known {
            break;
        }
    }
    last
}

/// The client's words from a gRPC connection error: `failed to call diskusage:
/// Unavailable: connection error: desc = "transport: Error while dialing: dial tcp ...:
/// connect: connection refused"` reads `dial tcp ...: connect: connection refused`.
fn connection_words(line: &str) -> String {
    let line = line.trim_start_matches("ERROR: ");
    let inner = line
        .split_once("desc = \"")
        .map(|(_, rest)| rest.trim_end_matches('"'))
        .unwrap_or(line);
    inner
        .trim_start_matches("transport: ")
        .trim_start_matches("Error while dialing: ")
        .to_string()
}

/// What buildx's own words about a builder that cannot start mean, and what to do; `None`
/// when the text is not one of the failures recognised here. `endpoint` and `opts` are
/// the builder's (for the file names in the advice).
pub(crate) fn explain(
    text: &str,
    endpoint: Option<&str>,
    opts: &BTreeMap<String, String>,
) -> Option<String> {
    let at = endpoint.map(|e| format!(" at {e}")).unwrap_or_default();
    let dialled = endpoint.unwrap_or("its address");
    let named = |k: &str| {
        opts.get(k)
            .map(|v| format!(" ({k}={v})"))
            .unwrap_or_default()
    };
    if text.contains("certificate signed by unknown authority")
        || text.contains("certificate is not trusted")
    {
        return Some(format!(
            "the BuildKit daemon{at} presented a certificate that the client's CA{} did \
            not sign; point `cacert` at the CA that issued the daemon's certificate",
            named("cacert")
        ));
    }
    if text.contains("certificate has expired") || text.contains("certificate is not yet valid") {
        return Some(format!(
            "the BuildKit daemon{at} presented a certificate outside its validity period; \
            renew the daemon's certificate"
        ));
    }
    if text.contains("certificate is valid for") || text.contains("doesn't contain any IP SANs") {
        return Some(format!(
            "the BuildKit daemon's certificate does not name the host buildx dialled \
             ({dialled}); set `servername` to a name in the certificate or reissue it with \
             that host"
        ));
    }
    // Under TLS 1.3 the daemon checks the client's certificate after the handshake, and a
    // client that already wrote its first request often sees only the closed connection.
    let closed_after_tls = opts.contains_key("cert")
        && (text.contains("write: broken pipe") || text.contains("connection reset by peer"));
    if closed_after_tls
        || text.contains("tls: bad certificate")
        || text.contains("tls: unknown certificate authority")
        || text.contains("tls: certificate required")
        || text.contains("tls: unknown certificate")
    {
        return Some(format!(
            "the BuildKit daemon{at} refused this client's certificate{}: it was not \
            issued by the CA the daemon trusts; use a client certificate from that CA",
            named("cert")
        ));
    }
    if let Some(image) = opts.get("image") {
        if text.contains("pull access denied")
            || text.contains("manifest unknown")
            || text.contains("repository does not exist")
            || (text.contains("pulling failed") && text.contains("No such image"))
            || text.contains("failed to resolve reference")
        {
            return Some(format!(
                "the docker-container builder's image {image} is not in the engine and cannot \
                be pulled; build or load it into the engine first (docker image ls {image})"
            ));
        }
    }
    if text.contains("connection refused") || text.contains("no such host") {
        return Some(format!(
            "nothing answers at {dialled}; start the BuildKit daemon there or point the \
             builder at one that runs"
        ));
    }
    None
}

/// A [`CommandError`](crate::cmd::CommandError) from creating or starting a builder, with
/// [`explain`]'s reading first when buildx's words are recognised.
/// buildx's remote driver hides why it cannot connect (it waits, then says `context
/// deadline exceeded`): for a builder `name` that exists, ask the daemon once more through
/// `docker buildx du`, which reports the connection error itself, and add its words.
pub(super) fn explained(
    runner: &Runner,
    name: Option<&str>,
    e: crate::cmd::CommandError,
    what: &str,
    endpoint: Option<&str>,
    opts: &BTreeMap<String, String>,
) -> anyhow::Error {
    let mut text = e.tail.join("\n");
    if let Some(name) = name {
        if explain(&text, endpoint, opts).is_none() && text.contains("context deadline exceeded") {
            if let Some(why) = connection_error(runner, name) {
                text = format!("{text}\n{why}");
            }
        }
    }
    match explain(&text, endpoint, opts) {
        Some(why) => anyhow::Error::new(e).context(format!("{what}: {why}")),
        None => anyhow::Error::new(e).context(what.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn explain_reads_tls_pull_and_connection_failures() {
        let tls = opts(&[("cacert", "/c/ca.pem"), ("cert", "/c/cert.pem")]);
        let at = Some("tcp://127.0.0.1:1234");
        let expired = "ERROR: failed to call info: x509: certificate has expired or is not \
                       yet valid: current time 2026-11-30T22:00:00Z is after 2020-01-02";
        assert_eq!(
            explain(expired, at, &tls).unwrap(),
            "the BuildKit daemon at tcp://127.0.0.1:1234 presented a certificate outside its \
             validity period; renew the daemon's certificate"
        );
        let unknown = "transport: authentication handshake failed: tls: failed to verify \
                       certificate: x509: certificate signed by unknown authority";
        assert!(explain(unknown, at, &tls)
            .unwrap()
            .contains("the client's CA (cacert=/c/ca.pem) did not sign"));
        let refused = "remote error: tls: unknown certificate authority";
        assert!(explain(refused, at, &tls)
            .unwrap()
            .contains("refused this client's certificate (cert=/c/cert.pem)"));
        let pull = "ERROR: Error response from daemon: pull access denied for x, repository \
                    does not exist";
        let image = opts(&[("image", "x:1")]);
        assert!(explain(pull, None, &image)
            .unwrap()
            .starts_with("the docker-container builder's image x:1 is not in the engine"));
        // Without an image option the same words are not about the builder's image.
        assert_eq!(explain(pull, None, &tls), None);
        let down = "dial tcp 127.0.0.1:9: connect: connection refused";
        assert!(explain(down, at, &tls)
            .unwrap()
            .starts_with("nothing answers at tcp://127.0.0.1:1234"));
        // The daemon closed the connection once TLS was set up: how a refused client
        // certificate often shows under TLS 1.3. Without a client certificate it is not that.
        let closed = "Unavailable: write tcp 127.0.0.1:5->127.0.0.1:1234: write: broken pipe";
        assert!(explain(closed, at, &tls)
            .unwrap()
            .contains("refused this client's certificate (cert=/c/cert.pem)"));
        assert_eq!(explain(closed, at, &image), None);
        assert_eq!(explain("something else entirely", at, &tls), None);
        assert_eq!(
            connection_words(
                "ERROR: failed to call diskusage: Unavailable: connection error: desc = \
                 \"transport: Error while dialing: dial tcp 127.0.0.1:9: connect: connection \
                 refused\""
            ),
            "dial tcp 127.0.0.1:9: connect: connection refused"
        );
    }
}
