//! The agents' own log lines, captured in this process, so a test can check what an agent
//! tells its operator (a real agent runs in-process here). Installed as the global
//! subscriber before anything else logs; with `RUST_LOG` set it prints as well.

use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Lines logged at WARN or above by the agent crate: `LEVEL message field=value …`.
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());
static INSTALLED: OnceLock<bool> = OnceLock::new();

struct Capture;

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value}");
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !meta.target().starts_with("proofrack_agent") || *meta.level() > tracing::Level::WARN {
            return;
        }
        let mut fields = Fields(meta.level().to_string());
        event.record(&mut fields);
        LINES.lock().expect("captured lines").push(fields.0);
    }
}

/// Installs the capture (once). Panics if another subscriber got there first, which only
/// happens when `RUST_LOG` made an earlier test install the plain one.
pub fn capture() {
    let installed = *INSTALLED.get_or_init(|| {
        let fmt = std::env::var_os("RUST_LOG").map(|_| {
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(tracing_subscriber::EnvFilter::from_default_env())
        });
        tracing_subscriber::registry()
            .with(Capture)
            .with(fmt)
            .try_init()
            .is_ok()
    });
    assert!(
        installed,
        "the agents' log capture could not be installed (another subscriber came first; run without RUST_LOG)"
    );
}

/// Captured lines containing every one of `needles`.
pub fn lines_with(needles: &[&str]) -> Vec<String> {
    LINES
        .lock()
        .expect("captured lines")
        .iter()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .cloned()
        .collect()
}
