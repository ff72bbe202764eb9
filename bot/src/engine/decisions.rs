//! A reviewer's Approve or Reject: authorized once by the pure core, stored with its state
//! change and effects in one write.

use greenlight_commands::{approval, Actor, Decision, PersonName, Platform, Refusal, Verdict};
use greenlight_storage::{
    approvals, decisions, deliveries, AnyConnection, NewDecision, StorageError,
};

use super::audit;
use super::decision_batch::Click;
use super::effects::{self, Context, ReplyTo};
use super::snapshot::{snapshot_with, Reading};
use super::Engine;
use crate::config::Config;
use crate::stored_policy::PolicyCache;

/// Someone acting from a chat platform.
#[derive(Debug, Clone)]
pub struct ChatActor {
    pub platform: Platform,
    /// The platform's user id (Slack `U…`, Discord snowflake).
    pub user_id: String,
    pub reply_to: ReplyTo,
}

impl ChatActor {
    /// How the release log names the account: `slack:U0123`.
    pub fn label(&self) -> String {
        audit::platform_user(self.platform, &self.user_id)
    }

    /// How the release log names the actor: the person `[people]` maps the account to, or the
    /// account itself.
    pub fn name(&self, person: Option<&PersonName>) -> String {
        person.map_or_else(|| self.label(), ToString::to_string)
    }
}

/// What the person who acted is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecisionReply {
    /// It counted (or changed the request).
    Accepted(String),
    /// It was refused; nothing changed but the audit log.
    Refused(Refusal),
}

impl DecisionReply {
    pub fn message(&self) -> String {
        match self {
            Self::Accepted(text) => text.clone(),
            Self::Refused(refusal) => refusal.to_string(),
        }
    }
}

/// An inbound delivery that must be applied at most once (a Discord interaction id): recorded
/// in the decision's own write, so a redelivery changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundDelivery {
    /// `webhook_deliveries.source`, e.g. `discord`.
    pub source: &'static str,
    pub id: String,
}

impl Engine {
    /// Records an inbound chat delivery that is not a decision (a slash command, a rollback
    /// confirmation) as seen, before it runs. `false` for a replay, which must then change
    /// nothing: chat deliveries apply at most once (SPEC §10). Kept as long as webhook ids.
    pub async fn first_delivery(&self, delivery: &InboundDelivery) -> Result<bool, StorageError> {
        self.storage
            .record_webhook_delivery(delivery.source, &delivery.id, self.clock.now())
            .await
    }

    /// Applies `verdict` by `actor` to approval request `request_id`.
    pub async fn decide(
        &self,
        request_id: i64,
        actor: ChatActor,
        verdict: Verdict,
    ) -> Result<DecisionReply, StorageError> {
        match self.decide_once(request_id, actor, verdict, None).await? {
            Some(reply) => Ok(reply),
            // Only a delivery id can make a decision a duplicate.
            None => Err(StorageError::conflict("decision reported as a duplicate")),
        }
    }

    /// As [`Self::decide`], but applied only if `delivery` was not seen before; `Ok(None)`
    /// for a redelivery (nothing is recorded, not even a refusal).
    pub async fn decide_once(
        &self,
        request_id: i64,
        actor: ChatActor,
        verdict: Verdict,
        delivery: Option<InboundDelivery>,
    ) -> Result<Option<DecisionReply>, StorageError> {
        let platform = actor.platform;
        let person = self
            .config
            .person_on(actor.platform, &actor.user_id)
            .cloned();
        // A reviewer's click goes straight to the writer, which decides with what it reads.
        // Anyone else can only be refused, and refusals change nothing but the record, so
        // theirs are worked out on a read connection and the single writer only stores the
        // outcome: a flood of strangers' clicks costs the writer a few inserts each.
        if !self.is_reviewer(request_id, person.as_ref()).await? {
            let now = self.clock.now();
            let preview = {
                let mut conn = self.storage.reader().await?;
                let request = approvals::get_approval_request(&mut conn, request_id).await?;
                let decider = Decider {
                    config: &self.config,
                    policies: &self.policies,
                    actor: &actor,
                };
                decider.evaluate(&mut conn, request, &verdict, now).await?
            };
            if preview.decided.is_err() && preview.transition.change.is_none() {
                let config = self.config.clone();
                let outcome = self
                    .storage
                    .write(move |conn| {
                        Box::pin(async move {
                            if !first_delivery(conn, delivery.as_ref(), now).await? {
                                return Ok(None);
                            }
                            apply(conn, &config, &actor, &verdict, preview, now)
                                .await
                                .map(Some)
                        })
                    })
                    .await?;
                self.outbox_wakeup.notify_one();
                count(platform, outcome.as_ref());
                return Ok(outcome);
            }
        }
        self.decide_in_batch(Click {
            request_id,
            actor,
            verdict,
            delivery,
        })
        .await
    }

    /// Whether `person` is among the request's reviewers, from its policy (read once per
    /// request, then from memory).
    async fn is_reviewer(
        &self,
        request_id: i64,
        person: Option<&PersonName>,
    ) -> Result<bool, StorageError> {
        let Some(person) = person else {
            return Ok(false);
        };
        let policy = match self.policies.cached(request_id) {
            Some(policy) => policy,
            None => {
                let mut conn = self.storage.reader().await?;
                let request = approvals::get_approval_request(&mut conn, request_id).await?;
                self.policies.get(&mut conn, &request).await?
            }
        };
        Ok(policy.policy.reviewers.contains(person))
    }
}

/// `greenlight_decisions_total{platform, outcome}`: accepted, or the refusal's code.
pub(super) fn count(platform: greenlight_commands::Platform, reply: Option<&DecisionReply>) {
    let outcome = match reply {
        Some(DecisionReply::Accepted(_)) => "accepted",
        Some(DecisionReply::Refused(refusal)) => refusal.as_str(),
        None => "duplicate",
    };
    metrics::counter!(
        "greenlight_decisions_total",
        "platform" => platform.as_str(),
        "outcome" => outcome
    )
    .increment(1);
}

/// Records `delivery` as seen; `false` when it was seen before (a redelivery).
async fn first_delivery(
    conn: &mut AnyConnection,
    delivery: Option<&InboundDelivery>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, StorageError> {
    match delivery {
        Some(delivery) => {
            deliveries::record_webhook_delivery(conn, delivery.source, &delivery.id, now).await
        }
        None => Ok(true),
    }
}

/// A decision worked out but not yet stored.
struct Evaluated {
    request: greenlight_storage::ApprovalRequest,
    person: Option<greenlight_commands::PersonName>,
    decided: Result<Decision, Refusal>,
    transition: greenlight_commands::Transition,
}

/// What a decision works with, in the writer or (for a preview) on a reader.
struct Decider<'a> {
    config: &'a Config,
    policies: &'a PolicyCache,
    actor: &'a ChatActor,
}

impl Decider<'_> {
    /// Applies the policy (the one permission check, in the pure core) to the request as
    /// `conn` sees it.
    async fn evaluate(
        &self,
        conn: &mut AnyConnection,
        request: greenlight_storage::ApprovalRequest,
        verdict: &Verdict,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Evaluated, StorageError> {
        let policy = self.policies.get(conn, &request).await?;
        let person = self
            .config
            .person_on(self.actor.platform, &self.actor.user_id);
        let reading = Reading::DecisionBy(person);
        let snapshot = snapshot_with(conn, self.config, &request, &policy, reading).await?;
        let core_actor = Actor {
            person: person.cloned(),
            platform: self.actor.platform,
            platform_user_id: self.actor.user_id.clone(),
        };
        let decided = approval::decide(&snapshot, &core_actor, verdict, now);
        let transition = approval::transition(&snapshot, &decided);
        Ok(Evaluated {
            request,
            person: person.cloned(),
            decided,
            transition,
        })
    }
}

/// Stores a decision: the decision row (refusals too, except clicks on final requests), the
/// state change, and the effects as outbox items.
async fn apply(
    conn: &mut AnyConnection,
    config: &Config,
    actor: &ChatActor,
    verdict: &Verdict,
    evaluated: Evaluated,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<DecisionReply, StorageError> {
    let Evaluated {
        request,
        person,
        decided,
        transition,
    } = evaluated;
    let request_id = request.id;
    let comment = match verdict {
        Verdict::Reject { reason } => Some(reason.trim().to_owned()).filter(|r| !r.is_empty()),
        Verdict::Approve => None,
    };
    // A click on a final request changes nothing; recording it would only be noise.
    let worth_recording = !matches!(&decided, Err(Refusal::Final { .. }));
    if worth_recording {
        decisions::record_decision(
            conn,
            &NewDecision {
                request_id,
                person: person.clone(),
                platform: actor.platform,
                platform_user: actor.user_id.clone(),
                verdict: verdict.word(),
                comment,
                refused_reason: decided.as_ref().err().map(|r| r.as_str().to_owned()),
                at: now,
            },
        )
        .await?;
    }
    let request = effects::apply_change(conn, request, transition.change.as_ref(), now).await?;
    let actor_label = actor.name(person.as_ref());
    effects::enqueue_effects(
        conn,
        &Context {
            config,
            request: &request,
            actor: &actor_label,
            reply_to: &actor.reply_to,
            now,
        },
        &transition.effects,
    )
    .await?;
    Ok(match decided {
        Ok(decision) => DecisionReply::Accepted(accepted_text(&decision)),
        Err(refusal) => DecisionReply::Refused(refusal),
    })
}

pub(super) fn accepted_text(decision: &Decision) -> String {
    match decision {
        Decision::AlreadyCounted => "You already approved this release; it counts once.".to_owned(),
        Decision::Counted { remaining, .. } => format!(
            "Approval recorded; {remaining} more approval{} needed.",
            if *remaining == 1 { " is" } else { "s are" }
        ),
        Decision::Approved { .. } => "Approved; the card shows what happens next.".to_owned(),
        Decision::Rejected { .. } => "Rejected. The release will not be deployed.".to_owned(),
    }
}

impl Engine {
    /// Whether `actor` may give `verdict` on the request now, without recording anything: lets
    /// a Reject click ask for a reason only when the reject could count.
    pub async fn may_decide(
        &self,
        request_id: i64,
        actor: &ChatActor,
        verdict: &Verdict,
    ) -> Result<Result<(), Refusal>, StorageError> {
        let mut conn = self.storage.reader().await?;
        let request = approvals::get_approval_request(&mut conn, request_id).await?;
        let decider = Decider {
            config: &self.config,
            policies: &self.policies,
            actor,
        };
        let evaluated = decider
            .evaluate(&mut conn, request, verdict, self.clock.now())
            .await?;
        Ok(evaluated.decided.map(|_| ()))
    }

    /// The card as it stands now.
    pub async fn card(
        &self,
        key: crate::cards::CardKey,
    ) -> Result<crate::cards::Card, StorageError> {
        let mut conn = self.storage.reader().await?;
        crate::cards::load_card(&mut conn, &self.config, key, self.clock.now()).await
    }
}

/// Records many deliveries in one statement (a batch); for each, whether it is the first
/// delivery: `None` (nothing to de-duplicate) always is, and of one id twice in a batch, the
/// first occurrence.
pub(super) async fn first_deliveries(
    conn: &mut AnyConnection,
    batch: &[Option<&InboundDelivery>],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<bool>, StorageError> {
    let keys: Vec<(&str, &str)> = batch
        .iter()
        .flatten()
        .map(|delivery| (delivery.source, delivery.id.as_str()))
        .collect();
    let mut fresh = deliveries::record_webhook_deliveries(conn, &keys, now).await?;
    Ok(batch
        .iter()
        .map(|delivery| match delivery {
            None => true,
            Some(delivery) => fresh.remove(&(delivery.source.to_owned(), delivery.id.clone())),
        })
        .collect())
}
