//! Why a service's deploy stops before its end, as one thing every wait watches: SIGINT/SIGTERM
//! (undo with calls only: the runner kills the job seconds later), or another service of the same
//! run failed (a full undo, waited for, with that failure as the reason).

use tokio::sync::watch;

#[derive(Clone)]
pub(crate) struct Stop {
    /// True once either happened: what waits and sleeps watch.
    flag: watch::Receiver<bool>,
    signal: watch::Receiver<bool>,
    /// Why another service of the run failed, once one did.
    sibling: Option<watch::Receiver<Option<String>>>,
}

impl Stop {
    /// Stops on `signal` (the process's SIGINT/SIGTERM flag) and, with `sibling`, when another
    /// service's failure is sent on it.
    pub(crate) fn new(signal: watch::Receiver<bool>, sibling: Option<watch::Receiver<Option<String>>>) -> Stop {
        let Some(sibling) = sibling else { return Stop { flag: signal.clone(), signal, sibling: None } };
        let (tx, flag) = watch::channel(false);
        let (mut s, mut o) = (signal.clone(), sibling.clone());
        tokio::spawn(async move {
            tokio::select! {
                Ok(_) = s.wait_for(|c| *c) => {}
                Ok(_) = o.wait_for(Option::is_some) => {}
                else => return,
            }
            let _ = tx.send(true);
        });
        Stop { flag, signal, sibling: Some(sibling) }
    }

    /// The flag a wait or sleep watches.
    pub(crate) fn flag(&mut self) -> &mut watch::Receiver<bool> {
        &mut self.flag
    }

    pub(crate) fn is_set(&self) -> bool {
        *self.flag.borrow() || self.by_signal() || self.sibling_failed().is_some()
    }

    /// SIGINT/SIGTERM arrived: the job has seconds left.
    pub(crate) fn by_signal(&self) -> bool {
        *self.signal.borrow()
    }

    /// Another service of the run failed, and why (None when it was a signal or nothing).
    pub(crate) fn sibling_failed(&self) -> Option<String> {
        self.sibling.as_ref().and_then(|s| s.borrow().clone())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn another_services_failure_sets_the_flag_with_its_reason_and_a_signal_says_so() {
        let (signal_tx, signal) = watch::channel(false);
        let (sibling_tx, sibling) = watch::channel(None);
        let mut stop = Stop::new(signal, Some(sibling));
        assert!(!stop.is_set());
        sibling_tx.send_replace(Some("`worker` failed: exit code 1".into()));
        tokio::time::timeout(Duration::from_secs(2), stop.flag().wait_for(|f| *f)).await.unwrap().unwrap();
        assert!(stop.is_set() && !stop.by_signal());
        assert_eq!(stop.sibling_failed().as_deref(), Some("`worker` failed: exit code 1"));
        signal_tx.send_replace(true);
        assert!(stop.by_signal());

        let (_keep, signal) = watch::channel(false);
        let alone = Stop::new(signal, None);
        assert!(!alone.is_set() && alone.sibling_failed().is_none());
    }
}
