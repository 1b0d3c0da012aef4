//! The result table: one figure per line, with its baseline and the ratio between them.

use crate::measure::round;

/// One line of the result table.
#[derive(serde::Serialize)]
pub(super) struct Figure {
    pub(super) scenario: String,
    pub(super) figure: String,
    pub(super) unit: String,
    pub(super) hub: f64,
    pub(super) baseline: Option<f64>,
    pub(super) ratio: Option<f64>,
    pub(super) target: String,
    pub(super) peak_rss_mb: Option<f64>,
}

#[derive(Default)]
pub(super) struct Report {
    pub(super) figures: Vec<Figure>,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add(
        &mut self,
        scenario: &str,
        figure: &str,
        unit: &str,
        hub: f64,
        baseline: Option<f64>,
        target: &str,
        rss: Option<f64>,
    ) {
        let ratio = baseline.filter(|b| *b > 0.0).map(|b| round(hub / b, 3));
        eprintln!("bench: {scenario} / {figure}: {hub:.3} {unit} (baseline {baseline:?})");
        self.figures.push(Figure {
            scenario: scenario.into(),
            figure: figure.into(),
            unit: unit.into(),
            hub: round(hub, 3),
            baseline: baseline.map(|b| round(b, 3)),
            ratio,
            target: target.into(),
            peak_rss_mb: rss.map(|r| round(r, 1)),
        });
    }

    pub(super) fn markdown(&self) -> String {
        let mut out = String::from(
            "| Scenario | Figure | Hub | Baseline | Ratio | Target | Server peak RSS |\n|---|---|---:|---:|---:|---|---:|\n",
        );
        for f in &self.figures {
            let baseline = f.baseline.map(|b| format!("{b}")).unwrap_or("–".into());
            let ratio = f.ratio.map(|r| format!("{r}")).unwrap_or("–".into());
            let rss = f
                .peak_rss_mb
                .map(|r| format!("{r} MB"))
                .unwrap_or("–".into());
            out.push_str(&format!(
                "| {} | {} | {} {} | {} | {} | {} | {} |\n",
                f.scenario, f.figure, f.hub, f.unit, baseline, ratio, f.target, rss
            ));
        }
        out
    }
}
