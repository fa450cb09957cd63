//! The Elasticsearch client, built from config, and the start-up checks that
//! turn a wrong URL or wrong credentials into an error naming the setting.

use std::time::Duration;

use anyhow::{bail, Context};
use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::headers::HeaderValue;
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::Elasticsearch;
use logpipe_config::ElasticsearchConfig;

pub fn build(es: &ElasticsearchConfig) -> anyhow::Result<Elasticsearch> {
    let url = url::Url::parse(&es.url).with_context(|| format!("elasticsearch.url `{}` is not a URL", es.url))?;
    let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url))
        .timeout(Duration::from_secs(60))
        // The indexer gzips `_bulk` bodies itself, at its own level, once.
        .request_body_compression(false);
    let password = secret(
        es.password.as_deref(),
        es.password_file.as_deref(),
        "elasticsearch.password_file",
    )?;
    let api_key = secret(
        es.api_key.as_deref(),
        es.api_key_file.as_deref(),
        "elasticsearch.api_key_file",
    )?;
    match (&es.username, password, api_key) {
        (Some(_), _, Some(_)) => bail!("elasticsearch: set either username/password or api_key, not both"),
        (Some(user), Some(pass), None) => builder = builder.auth(Credentials::Basic(user.clone(), pass)),
        (Some(_), None, None) => bail!("elasticsearch.username is set but neither password nor password_file is"),
        (None, _, Some(key)) => {
            // The "encoded" form Kibana shows (base64 of id:key) goes as it is;
            // the client marks the header sensitive.
            if HeaderValue::from_str(&key).is_err() {
                bail!("elasticsearch.api_key has characters not allowed in a header");
            }
            builder = builder.auth(Credentials::EncodedApiKey(key));
        }
        (None, _, None) => {}
    }
    if let Some(ca) = &es.ca_file {
        let pem = std::fs::read(ca).with_context(|| format!("elasticsearch.ca_file `{}`", ca.display()))?;
        let cert = Certificate::from_pem(&pem)
            .with_context(|| format!("elasticsearch.ca_file `{}` is not PEM", ca.display()))?;
        builder = builder.cert_validation(CertificateValidation::Full(cert));
    }
    Ok(Elasticsearch::new(
        builder.build().context("building the Elasticsearch client")?,
    ))
}

/// A secret from the config value (which the environment can set, as
/// `LOGPIPE__ELASTICSEARCH__PASSWORD`), else its file (trailing newline ignored).
fn secret(value: Option<&str>, file: Option<&std::path::Path>, file_key: &str) -> anyhow::Result<Option<String>> {
    if let Some(v) = value {
        return Ok(Some(v.to_string()));
    }
    if let Some(file) = file {
        let text = std::fs::read_to_string(file).with_context(|| format!("{file_key} `{}`", file.display()))?;
        return Ok(Some(text.trim_end_matches(['\n', '\r']).to_string()));
    }
    Ok(None)
}

/// Checks that Elasticsearch answers and accepts our credentials.
pub async fn check(client: &Elasticsearch, es: &ElasticsearchConfig) -> anyhow::Result<()> {
    let resp = client
        .info()
        .send()
        .await
        .with_context(|| format!("cannot reach Elasticsearch at elasticsearch.url `{}`", es.url))?;
    match resp.status_code().as_u16() {
        200 => Ok(()),
        401 | 403 => bail!(
            "Elasticsearch at `{}` refused the credentials (HTTP {}): check elasticsearch.username/password or elasticsearch.api_key",
            es.url,
            resp.status_code()
        ),
        other => bail!("Elasticsearch at elasticsearch.url `{}` answered HTTP {other}", es.url),
    }
}

/// The URL without credentials, for logs.
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("redacted"));
            }
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> ElasticsearchConfig {
        ElasticsearchConfig {
            url: url.into(),
            username: Some("elastic".into()),
            password: Some("hunter2".into()),
            password_file: None,
            api_key: None,
            api_key_file: None,
            ca_file: None,
        }
    }

    #[test]
    fn secrets_never_show_in_debug_or_logged_urls() {
        let mut c = config("http://elastic:hunter3@localhost:9200");
        c.api_key = Some("c2VjcmV0".into());
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("c2VjcmV0"), "{shown}");
        assert!(!redacted_url(&c.url).contains("hunter3"));
    }

    #[test]
    fn a_bad_url_names_the_setting() {
        let err = build(&config("http://[::1")).unwrap_err();
        assert!(format!("{err:#}").contains("elasticsearch.url"), "{err:#}");
        let mut c = config("http://localhost:9200");
        c.api_key = Some("k".into());
        assert!(format!("{:#}", build(&c).unwrap_err()).contains("not both"));
    }
}
