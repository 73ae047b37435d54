//! Slack incoming webhooks: `{text, blocks}`; any 2xx is delivered.
use super::{Outcome, http_outcome, render};
use serde_json::json;

/// The Slack message: `text` is the fallback (notifications, screen readers); the blocks
/// show the title, the summary and the links.
pub fn payload(message: &serde_json::Value) -> serde_json::Value {
    let r = render(message);
    let links: Vec<String> = r.links.iter().map(|(name, url)| format!("<{url}|{}>", name.replace('_', " "))).collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&r.title, 150)}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&r.summary, 3000)}}),
    ];
    if !links.is_empty() {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": links.join(" · ")}]}));
    }
    json!({"text": format!("{}: {}", r.title, r.summary), "blocks": blocks, "metadata": {"event_type": r.kind}})
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_string() } else { s.chars().take(max - 1).chain(['…']).collect() }
}

pub async fn send(http: &reqwest::Client, url: &str, message: &serde_json::Value) -> Outcome {
    http_outcome(http.post(url).json(&payload(message)).send().await).await
}
