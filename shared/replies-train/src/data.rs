//! Labelled replies for training: every `*.jsonl` file of a folder (the corpus format); the file's
//! stem names its group (its writer), so cross-validation can hold out whole writers.

use std::path::Path;

use anyhow::Context;
use arflow_replies::eval::parse_jsonl;
use arflow_replies::{Analysis, Intent, analyse, is_wordless};

/// One labelled reply as the model sees it (dates are rule-based and scored by
/// `arflow classify --eval`, not here).
pub struct Example {
    pub id: String,
    pub group: String,
    pub intent: Intent,
    pub analysis: Analysis,
    pub wordless: bool,
}

impl Example {
    pub fn label(&self) -> usize {
        self.intent.index()
    }
}

/// Every example of every `*.jsonl` file in `dir`, in file-name order.
pub fn load(dir: &Path) -> anyhow::Result<Vec<Example>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let group = f.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let text = std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?;
        let lines = parse_jsonl(&text).with_context(|| format!("{} is not labelled JSONL", f.display()))?;
        for l in lines {
            let analysis = analyse(l.channel, &l.text);
            let wordless = is_wordless(&analysis.own);
            out.push(Example { id: l.id, group: group.clone(), intent: l.intent, analysis, wordless });
        }
    }
    Ok(out)
}
