//! The Elasticsearch client, built from config, and the start-up checks that
//! turn a wrong URL or wrong credentials into an error naming the setting.

use std::time::Duration;

use anyhow::{bail, Context};
use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::headers::{HeaderValue, AUTHORIZATION};
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::indices::IndicesPutIndexTemplateParts;
use elasticsearch::Elasticsearch;
use logpipe_config::ElasticsearchConfig;

pub fn build(es: &ElasticsearchConfig) -> anyhow::Result<Elasticsearch> {
    let url = url::Url::parse(&es.url).with_context(|| format!("elasticsearch.url `{}` is not a URL", es.url))?;
    let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url))
        .timeout(Duration::from_secs(60))
        .request_body_compression(true);
    let password = match (&es.password, &es.password_file) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(file)) => Some(
            std::fs::read_to_string(file)
                .with_context(|| format!("elasticsearch.password_file `{}`", file.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
        ),
        (None, None) => None,
    };
    match (&es.username, password, &es.api_key) {
        (Some(_), _, Some(_)) => bail!("elasticsearch: set either username/password or api_key, not both"),
        (Some(user), Some(pass), None) => builder = builder.auth(Credentials::Basic(user.clone(), pass)),
        (Some(_), None, None) => bail!("elasticsearch.username is set but neither password nor password_file is"),
        (None, _, Some(key)) => {
            // The "encoded" form Kibana shows (base64 of id:key) goes as it is.
            let value = HeaderValue::from_str(&format!("ApiKey {key}"))
                .context("elasticsearch.api_key has characters not allowed in a header")?;
            builder = builder.header(AUTHORIZATION, value);
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

/// Installs (or updates) logpipe's index template.
pub async fn install_template(client: &Elasticsearch) -> anyhow::Result<()> {
    let body: serde_json::Value = serde_json::from_str(logpipe_schemas::templates::LOGS_TEMPLATE)?;
    let resp = client
        .indices()
        .put_index_template(IndicesPutIndexTemplateParts::Name(
            logpipe_schemas::templates::LOGS_TEMPLATE_NAME,
        ))
        .body(body)
        .send()
        .await
        .context("installing the index template")?;
    if !resp.status_code().is_success() {
        let status = resp.status_code();
        let text = resp.text().await.unwrap_or_default();
        bail!("installing the index template: HTTP {status}: {text}");
    }
    Ok(())
}
