//! The EC2 spot interruption notice, read from the instance metadata service
//! with IMDSv2: a session token from `PUT /latest/api/token`, then
//! `GET /latest/meta-data/spot/instance-action` with it (404 until AWS
//! schedules the interruption, then `{"action": "terminate", "time": "…"}`).

use std::time::{Duration, Instant};

use logpipe_config::SpotConfig;
use logpipe_core::shutdown::CancellationToken;

const TOKEN_TTL_SECS: u64 = 21_600;

/// A scheduled interruption.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Notice {
    pub action: String,
    pub time: String,
}

pub struct Imds {
    http: reqwest::Client,
    endpoint: String,
    token: Option<(String, Instant)>,
}

impl Imds {
    pub fn new(endpoint: &str) -> Imds {
        Imds {
            // IMDS answers in microseconds; a slow answer means it is not there.
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .expect("a plain HTTP client"),
            endpoint: endpoint.trim_end_matches('/').to_string(),
            token: None,
        }
    }

    async fn token(&mut self) -> anyhow::Result<String> {
        if let Some((t, until)) = &self.token {
            if Instant::now() < *until {
                return Ok(t.clone());
            }
        }
        let resp = self
            .http
            .put(format!("{}/latest/api/token", self.endpoint))
            .header("X-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL_SECS.to_string())
            .send()
            .await?;
        if !resp.status().is_success() {
            anyhow::bail!("IMDS token request answered {}", resp.status());
        }
        let t = resp.text().await?.trim().to_string();
        // Renewed well before it expires.
        self.token = Some((t.clone(), Instant::now() + Duration::from_secs(TOKEN_TTL_SECS / 2)));
        Ok(t)
    }

    /// The interruption notice, if one is scheduled.
    pub async fn notice(&mut self) -> anyhow::Result<Option<Notice>> {
        for _ in 0..2 {
            let token = self.token().await?;
            let resp = self
                .http
                .get(format!("{}/latest/meta-data/spot/instance-action", self.endpoint))
                .header("X-aws-ec2-metadata-token", token)
                .send()
                .await?;
            match resp.status().as_u16() {
                200 => {
                    let body = resp.text().await?;
                    let n: Notice = serde_json::from_str(&body).map_err(|e| {
                        anyhow::anyhow!("IMDS instance-action is not the documented JSON ({e}): {body}")
                    })?;
                    return Ok(Some(n));
                }
                404 => return Ok(None),
                401 => self.token = None, // expired token: get a new one and ask again
                s => anyhow::bail!("IMDS instance-action answered {s}"),
            }
        }
        anyhow::bail!("IMDS refused a fresh token")
    }
}

/// Polls until a notice arrives (then cancels `notice`) or `stop` is cancelled.
pub async fn watch(cfg: SpotConfig, notice: CancellationToken, stop: CancellationToken) {
    let mut imds = Imds::new(&cfg.imds_endpoint);
    let every = Duration::from_millis(cfg.poll_interval_ms);
    let mut warned = false;
    loop {
        match imds.notice().await {
            Ok(Some(n)) => {
                tracing::warn!(action = %n.action, time = %n.time, "spot interruption notice: draining");
                notice.cancel();
                return;
            }
            Ok(None) => warned = false,
            Err(e) => {
                if !warned {
                    tracing::warn!(error = %e, endpoint = %cfg.imds_endpoint, "cannot read the spot notice from IMDS; will keep trying");
                    warned = true;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
    }
}
