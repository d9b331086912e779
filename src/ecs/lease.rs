//! One deploy at a time per service: a lease written as a tag on the stable service (who holds it,
//! until when), read back after a moment so that of two runs that wrote together exactly one goes
//! on, and removed at the end. ECS has no conditional write, so the read-back after `settle` is what
//! decides; an expired lease (a run that was killed) is taken over with a warning. While the run
//! lives, the lease is renewed in the background, and before each stage that changes something
//! the run checks that it still holds it.

use std::time::{Duration, SystemTime};

use anyhow::{Result, anyhow, bail};
use aws_sdk_ecs::primitives::{DateTime, DateTimeFormat};
use aws_sdk_ecs::types::Tag;

use crate::aws::call_failed;
use crate::failure::Refused;
use crate::gha::Gha;

/// The tag's key. Its value: `until <RFC 3339> by <holder> lease <token>`.
pub(crate) const KEY: &str = "ecs-deploy-action:lease";

/// Ends the holder of a lease kept while ECS waits for approval: the run that answers takes it over.
const PAUSED: &str = " (paused for approval)";

/// A lease as read from the tag.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Holder {
    pub(crate) until: SystemTime,
    /// The run's URL (or `local run on <host>`), for the person who reads the refusal.
    pub(crate) by: String,
    pub(crate) token: String,
}

impl Holder {
    fn value(&self) -> String {
        let until = DateTime::from(self.until).fmt(DateTimeFormat::DateTime).unwrap_or_default();
        format!("until {until} by {} lease {}", self.by, self.token)
    }

    fn parse(value: &str) -> Option<Holder> {
        let rest = value.strip_prefix("until ")?;
        let (until, rest) = rest.split_once(" by ")?;
        let (by, token) = rest.rsplit_once(" lease ")?;
        let until = DateTime::from_str(until, DateTimeFormat::DateTime).ok()?;
        Some(Holder { until: SystemTime::try_from(until).ok()?, by: by.to_string(), token: token.to_string() })
    }

    fn until_text(&self) -> String {
        DateTime::from(self.until).fmt(DateTimeFormat::DateTime).unwrap_or_else(|_| "?".into())
    }
}

/// The lease this run holds on a service, until `release`.
pub(crate) struct Lease {
    service: String,
    service_arn: String,
    mine: Holder,
    hold: Duration,
}

/// What the service's lease tag says now (None: no lease, or one this action did not write).
async fn read(ecs: &aws_sdk_ecs::Client, service_arn: &str) -> Result<Option<Holder>> {
    let out = ecs
        .list_tags_for_resource()
        .resource_arn(service_arn)
        .send()
        .await
        .map_err(|e| call_failed("ECS ListTagsForResource", &e))?;
    Ok(out.tags().iter().find(|t| t.key() == Some(KEY)).and_then(|t| t.value()).and_then(Holder::parse))
}

fn refused(service: &str, service_arn: &str, holder: &Holder) -> anyhow::Error {
    if let Some(by) = holder.by.strip_suffix(PAUSED) {
        return Refused(format!(
            "`{service}` waits for approval of a deploy by {by} (ECS rolls it back by itself at {} if nobody answers): \
             answer it first with `resume: continue` or `resume: rollback`, then deploy",
            holder.until_text()
        ))
        .into();
    }
    Refused(format!(
        "`{service}` is being deployed by {} (its lease runs until {}): wait for that run to end. If it is gone, \
         remove the lease and run again: aws ecs untag-resource --resource-arn {service_arn} --tag-keys {KEY}",
        holder.by,
        holder.until_text()
    ))
    .into()
}

/// Who asks for a lease, and for how long.
pub(crate) struct Taker<'a> {
    /// The run's URL (or `local run on <host>`).
    pub(crate) by: &'a str,
    pub(crate) hold: Duration,
    /// How long at least to wait before the read-back that decides between two runs that wrote at
    /// once; at least four times our own write's round trip too, since a second run's write lands up
    /// to about one round trip after its read.
    pub(crate) settle: Duration,
    /// A run that answers a pause: it takes over the lease the paused run kept.
    pub(crate) resume: bool,
}

/// The refusal for a deploy to `service` while a deploy of it waits for approval (its lease kept),
/// which says how to answer; None when none waits.
pub(crate) async fn waiting_for_approval(
    ecs: &aws_sdk_ecs::Client,
    service: &str,
    service_arn: &str,
) -> Option<anyhow::Error> {
    let held = read(ecs, service_arn).await.ok()??;
    (held.by.ends_with(PAUSED) && held.until > SystemTime::now()).then(|| refused(service, service_arn, &held))
}

/// Takes the lease on `service` for `who` until `now + hold`, or refuses naming who holds it.
pub(crate) async fn take(
    ecs: &aws_sdk_ecs::Client,
    service: &str,
    service_arn: &str,
    who: &Taker<'_>,
    gha: &Gha,
) -> Result<Lease> {
    let Taker { by, hold, settle, resume } = *who;
    let now = SystemTime::now();
    match read(ecs, service_arn).await? {
        // The run that answers a pause takes over the lease the paused run kept.
        Some(held) if held.until > now && resume && held.by.ends_with(PAUSED) => {
            gha.info(&format!("taking over the deploy lease on `{service}` kept by {}", held.by));
        }
        Some(held) if held.until > now => return Err(refused(service, service_arn, &held)),
        Some(expired) => gha.warning(&format!(
            "taking over the lease on `{service}` of {}, which expired at {}: that run ended without releasing it",
            expired.by,
            expired.until_text()
        )),
        None => {}
    }
    let until = now
        .checked_add(hold)
        .ok_or_else(|| anyhow!("a lease of {} is too long", crate::config::duration::format(hold)))?;
    // Whole seconds: what the tag holds, so that the read-back compares equal.
    let until = SystemTime::try_from(DateTime::from_secs(DateTime::from(until).secs()))
        .map_err(|e| anyhow!("lease expiry: {e}"))?;
    let mine = Holder { until, by: by.to_string(), token: format!("{:016x}", fastrand::u64(..)) };
    let writing = tokio::time::Instant::now();
    ecs.tag_resource()
        .resource_arn(service_arn)
        .tags(Tag::builder().key(KEY).value(mine.value()).build())
        .send()
        .await
        .map_err(|e| call_failed("ECS TagResource", &e))
        .map_err(|e| e.context(format!("could not take the deploy lease on `{service}` (a tag on the service)")))?;
    crate::clock::sleep(settle.max(writing.elapsed().saturating_mul(4))).await;
    match read(ecs, service_arn).await? {
        Some(now) if now == mine => {
            gha.info(&format!("took the deploy lease on `{service}` until {}", mine.until_text()));
            Ok(Lease { service: service.to_string(), service_arn: service_arn.to_string(), mine, hold })
        }
        // Another run wrote after us: it holds the lease, and its tag stays.
        Some(other) => Err(refused(service, service_arn, &other)),
        None => Err(anyhow!("the deploy lease tag on `{service}` vanished right after it was written: run again")),
    }
}

impl Holder {
    /// The same lease: the same run's token (a renewal moves `until` only).
    fn same_lease(&self, other: &Holder) -> bool {
        self.token == other.token && self.by == other.by
    }
}

/// How often a held lease is written again: a quarter of its length, at most every 5 minutes.
fn renew_every(hold: Duration) -> Duration {
    (hold / 4).min(Duration::from_secs(5 * 60))
}

impl Lease {
    /// Stops the run before its next change when the lease is no longer this run's: another run
    /// took it (ours expired, or was removed by hand), so going on would fight that run's deploy.
    pub(crate) async fn verify(&self, ecs: &aws_sdk_ecs::Client) -> Result<()> {
        match read(ecs, &self.service_arn).await? {
            Some(now) if now.same_lease(&self.mine) => Ok(()),
            Some(other) => Err(Refused(format!(
                "this run lost the deploy lease on `{}` to {} (until {}): nothing more was changed by this run; \
                 check what that run deploys before running again",
                self.service,
                other.by,
                other.until_text()
            ))
            .into()),
            None => Err(Refused(format!(
                "the deploy lease on `{}` was removed while this run held it: nothing more was changed by this \
                 run; run again",
                self.service
            ))
            .into()),
        }
    }

    /// Writes the lease again, `hold` from now, if it is still this run's.
    async fn renew(&mut self, ecs: &aws_sdk_ecs::Client) -> Result<()> {
        let until = SystemTime::now()
            .checked_add(self.hold)
            .ok_or_else(|| anyhow!("a lease of {} is too long", crate::config::duration::format(self.hold)))?;
        let renewed = Holder { until, ..self.mine.clone() };
        self.rewrite(ecs, renewed).await
    }

    /// Keeps the lease past this run, until `until`, marked as waiting for approval.
    async fn hold_paused(&mut self, until: SystemTime, ecs: &aws_sdk_ecs::Client) -> Result<()> {
        let paused = Holder { until, by: format!("{}{PAUSED}", self.mine.by), token: self.mine.token.clone() };
        self.rewrite(ecs, paused).await
    }

    /// Writes `next` (to whole seconds, what the tag holds) over the lease if it is still this run's.
    async fn rewrite(&mut self, ecs: &aws_sdk_ecs::Client, mut next: Holder) -> Result<()> {
        let Some(now) = read(ecs, &self.service_arn).await? else { bail!("the lease tag is gone") };
        if !now.same_lease(&self.mine) {
            bail!("{} holds it now", now.by);
        }
        next.until = SystemTime::try_from(DateTime::from_secs(DateTime::from(next.until).secs()))
            .map_err(|e| anyhow!("lease expiry: {e}"))?;
        ecs.tag_resource()
            .resource_arn(&self.service_arn)
            .tags(Tag::builder().key(KEY).value(next.value()).build())
            .send()
            .await
            .map_err(|e| call_failed("ECS TagResource", &e))?;
        self.mine = next;
        Ok(())
    }

    /// Removes the lease if it is still this run's; a failure is a warning (the lease expires).
    pub(crate) async fn release(self, ecs: &aws_sdk_ecs::Client, gha: &Gha) {
        let result = async {
            if !read(ecs, &self.service_arn).await?.is_some_and(|now| now.same_lease(&self.mine)) {
                return Ok(false);
            }
            ecs.untag_resource()
                .resource_arn(&self.service_arn)
                .tag_keys(KEY)
                .send()
                .await
                .map_err(|e| call_failed("ECS UntagResource", &e))?;
            anyhow::Ok(true)
        }
        .await;
        match result {
            Ok(true) => {}
            Ok(false) => gha.warning("the deploy lease was no longer this run's at the end: left as it is"),
            Err(e) => gha.warning(&format!(
                "could not release the deploy lease ({e:#}); it expires by itself at {}",
                self.mine.until_text()
            )),
        }
    }
}

/// The run's leases, renewed in the background while the run lives (`keep`), checked before each
/// change (`verify`), and released at the end (`release`).
pub(crate) struct Leases {
    held: std::sync::Arc<tokio::sync::Mutex<Vec<Lease>>>,
    renewal: tokio::task::JoinHandle<()>,
}

impl Leases {
    /// Starts renewing `leases` every `renew_every` of their length; a renewal that fails is a
    /// warning (the next one tries again, and `verify` stops the run if the lease is lost).
    pub(crate) fn keep(leases: Vec<Lease>, ecs: &aws_sdk_ecs::Client, gha: &Gha) -> Self {
        let every = leases.iter().map(|l| renew_every(l.hold)).min().unwrap_or(Duration::from_secs(60));
        let held = std::sync::Arc::new(tokio::sync::Mutex::new(leases));
        let (ecs, gha, shared) = (ecs.clone(), gha.clone(), held.clone());
        let renewal = tokio::spawn(async move {
            loop {
                crate::clock::sleep(every).await;
                for lease in shared.lock().await.iter_mut() {
                    if let Err(e) = lease.renew(&ecs).await {
                        gha.warning(&format!("could not renew the deploy lease on `{}`: {e:#}", lease.service));
                    }
                }
            }
        });
        Leases { held, renewal }
    }

    /// Every lease still this run's, or the refusal that stops the run before its next change.
    pub(crate) async fn verify(&self, ecs: &aws_sdk_ecs::Client) -> Result<()> {
        for lease in self.held.lock().await.iter() {
            lease.verify(ecs).await?;
        }
        Ok(())
    }

    /// Stops the renewal and keeps every lease until the pause expires (ECS's rollback starts then,
    /// and a deploy after it waits for that), for the run that answers it; without a known expiry,
    /// for as long as the run held it.
    pub(crate) async fn hold_while_paused(self, at: &crate::outcome::PausedAt, ecs: &aws_sdk_ecs::Client, gha: &Gha) {
        self.renewal.abort();
        let expires = at
            .expires
            .as_deref()
            .and_then(|t| DateTime::from_str(t, DateTimeFormat::DateTime).ok())
            .and_then(|t| SystemTime::try_from(t).ok());
        for lease in self.held.lock().await.iter_mut() {
            let until = expires.unwrap_or_else(|| SystemTime::now() + lease.hold);
            match lease.hold_paused(until, ecs).await {
                Ok(()) => gha.info(&format!(
                    "the deploy lease on `{}` stays taken until {} (waiting for approval)",
                    lease.service,
                    lease.mine.until_text()
                )),
                Err(e) => gha.warning(&format!(
                    "could not keep the deploy lease on `{}` while it waits for approval ({e:#}); another deploy \
                     could start before the pause is answered",
                    lease.service
                )),
            }
        }
    }

    /// Stops the renewal and releases every lease.
    pub(crate) async fn release(self, ecs: &aws_sdk_ecs::Client, gha: &Gha) {
        self.renewal.abort();
        let leases = std::mem::take(&mut *self.held.lock().await);
        for lease in leases {
            lease.release(ecs, gha).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_reads_back_as_it_was_written() {
        let holder = Holder {
            until: SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000),
            by: "https://github.com/octo/app/actions/runs/42".into(),
            token: "00ff00ff00ff00ff".into(),
        };
        let value = holder.value();
        assert_eq!(
            value,
            "until 2026-11-30T00:53:20Z by https://github.com/octo/app/actions/runs/42 lease 00ff00ff00ff00ff"
        );
        assert!(value.len() <= 256, "ECS tag values hold 256 characters");
        assert_eq!(Holder::parse(&value), Some(holder));
        assert_eq!(Holder::parse("someone else's tag"), None);
    }
}
