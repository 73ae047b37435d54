//! Slack incoming webhooks: `{text, blocks}`; any 2xx is delivered.
use super::{Outcome, http_outcome, render};
use serde_json::json;

/// The Slack message: `text` is the fallback (notifications, screen readers); the blocks
/// show the title, the summary and the links. Text from clients is escaped so a reply
/// containing `<!channel>` cannot ping the firm's whole channel.
pub fn payload(message: &serde_json::Value) -> serde_json::Value {
    let mut r = render(message);
    // The header is plain text (shown as is); everything else is mrkdwn.
    let header = r.title.clone();
    r.title = escape(&r.title);
    r.summary = escape(&r.summary);
    let links: Vec<String> = r.links.iter().map(|(name, url)| format!("<{url}|{}>", name.replace('_', " "))).collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&header, 150)}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&r.summary, 3000)}}),
    ];
    if !links.is_empty() {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": links.join(" · ")}]}));
    }
    json!({"text": format!("{}: {}", r.title, r.summary), "blocks": blocks})
}

/// Slack's control characters in mrkdwn (https://api.slack.com/reference/surfaces/formatting#escaping).
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_string() } else { s.chars().take(max - 1).chain(['…']).collect() }
}

pub async fn send(http: &reqwest::Client, url: &str, message: &serde_json::Value) -> Outcome {
    http_outcome(http.post(url).json(&payload(message)).send().await).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn client_text_cannot_mention_the_channel() {
        let message = json!({"type": "dispute", "data": {
            "title": "A & B disputes", "summary": "<!channel> we never ordered this <@U123>",
            "links": {"invoice_activity": "https://gw.test/v1/invoices/1/activity"}}});
        let p = payload(&message);
        let all = p.to_string();
        assert!(!all.contains("<!channel>") && !all.contains("<@U123>"), "{all}");
        assert!(p["text"].as_str().unwrap().contains("&lt;!channel&gt;"));
        assert!(p["blocks"][2]["elements"][0]["text"].as_str().unwrap().starts_with("<https://gw.test/"));
    }
}
