//! A sandbox that runs nothing: it records every spec and answers with scripted outcomes,
//! for unit tests of the executor.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::error::Result;
use super::{ExitStatus, OutputSink, RunOutcome, RunSpec, Sandbox, Stream};

#[derive(Debug, Default)]
pub struct RecordingSandbox {
    runs: Mutex<Vec<RunSpec>>,
    /// Scripted (stdout, status) answers; success with no output once they run out.
    script: Mutex<VecDeque<(String, ExitStatus)>>,
}

impl RecordingSandbox {
    pub fn new() -> RecordingSandbox {
        RecordingSandbox::default()
    }

    /// Queues the outcome of the next run.
    pub fn then(self, stdout: &str, status: ExitStatus) -> RecordingSandbox {
        self.script
            .lock()
            .expect("not poisoned")
            .push_back((stdout.to_string(), status));
        self
    }

    pub fn runs(&self) -> Vec<RunSpec> {
        self.runs.lock().expect("not poisoned").clone()
    }
}

impl Sandbox for RecordingSandbox {
    fn run(&self, spec: &RunSpec, output: &mut dyn OutputSink) -> Result<RunOutcome> {
        self.runs.lock().expect("not poisoned").push(spec.clone());
        let (stdout, status) = self
            .script
            .lock()
            .expect("not poisoned")
            .pop_front()
            .unwrap_or((String::new(), ExitStatus::Code(0)));
        output.output(Stream::Stdout, stdout.as_bytes());
        let mut tail = super::Tail::new(20);
        tail.push(stdout.as_bytes());
        Ok(RunOutcome {
            status,
            tail: tail.finish(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_specs_and_replays_outcomes() {
        let sb = RecordingSandbox::new().then("boom\n", ExitStatus::Code(2));
        let mut seen = Vec::new();
        let mut sink = |_: Stream, d: &[u8]| seen.extend_from_slice(d);
        let spec = RunSpec::new("/r", &["sh", "-c", "false"]);
        let out = sb.run(&spec, &mut sink).unwrap();
        assert!(sb.run(&spec, &mut sink).unwrap().status.success());
        assert_eq!(out.status, ExitStatus::Code(2));
        assert_eq!(out.tail, vec!["boom"]);
        assert_eq!(seen, b"boom\n");
        assert_eq!(sb.runs(), vec![spec.clone(), spec]);
    }
}
