//! Agent status inheritance: how a Kustomer status change becomes (or does not become) a CCAI
//! Platform status change, and, in bidirectional mode, how a CCAI change is written back to
//! Kustomer without ever echoing. Pure: the gateway feeds it facts and applies its decisions.
//! `docs/status-inheritance.md` is this module as a state table; every row of it is a named row
//! of the tests below.
//!
//! Timestamps are Unix milliseconds as stamped where the change was made (the Kustomer event's
//! own time, the adapter's click), clamped by the gateway to a sane window around its clock.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How a Kustomer change and the agent's own choice in the adapter are ranked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriorityRule {
    /// The latest change is applied, whether it came from Kustomer or from the adapter.
    #[default]
    LatestWins,
    /// During a call, a Kustomer change always replaces the agent's next status, even one the
    /// agent chose after it. Outside calls, the latest change wins as above.
    KustomerOverridesNext,
}

/// The admin's configuration, per organisation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InheritanceConfig {
    pub enabled: bool,
    #[serde(default)]
    pub rule: PriorityRule,
    /// Write CCAI status changes back to Kustomer (routing work sessions).
    #[serde(default)]
    pub bidirectional: bool,
    /// Kustomer status id → CCAI status id. Many-to-one; an unmapped Kustomer status is ignored.
    #[serde(default)]
    pub mapping: BTreeMap<String, i64>,
}

/// What a configuration is checked against when it is saved.
pub struct Catalogue<'a> {
    /// Kustomer's routing statuses (id, name).
    pub kustomer: &'a [(String, String)],
    /// The CCAI tenant's statuses (id, name, whether the platform sets it itself).
    pub ccai: &'a [(i64, String, bool)],
}

/// Why a configuration cannot be saved. One per problem, so the admin sees them all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    #[error("Kustomer has no status with id {0}")]
    UnknownKustomerStatus(String),
    #[error("the contact center has no status with id {ccai} (mapped from {kustomer})")]
    UnknownCcaiStatus { kustomer: String, ccai: i64 },
    #[error("{name} is set by the contact center itself and cannot be a target (mapped from {kustomer})")]
    SystemTarget { kustomer: String, name: String },
    #[error("status inheritance is off, so writing statuses back to Kustomer cannot be on")]
    BidirectionalWithoutInheritance,
}

impl InheritanceConfig {
    /// Every problem of this configuration against `catalogue`; empty when it can be saved.
    pub fn problems(&self, catalogue: &Catalogue<'_>) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        for (kustomer, ccai) in &self.mapping {
            if !catalogue.kustomer.iter().any(|(id, _)| id == kustomer) {
                problems.push(ConfigProblem::UnknownKustomerStatus(kustomer.clone()));
            }
            match catalogue.ccai.iter().find(|(id, _, _)| id == ccai) {
                None => problems.push(ConfigProblem::UnknownCcaiStatus {
                    kustomer: kustomer.clone(),
                    ccai: *ccai,
                }),
                Some((_, name, true)) => problems.push(ConfigProblem::SystemTarget {
                    kustomer: kustomer.clone(),
                    name: name.clone(),
                }),
                Some(_) => {}
            }
        }
        if self.bidirectional && !self.enabled {
            problems.push(ConfigProblem::BidirectionalWithoutInheritance);
        }
        problems
    }

    /// The Kustomer status a CCAI status is written back as: the first Kustomer status (by id)
    /// mapped to it.
    pub fn kustomer_status_for(&self, ccai: i64) -> Option<&str> {
        self.mapping
            .iter()
            .find(|(_, target)| **target == ccai)
            .map(|(kustomer, _)| kustomer.as_str())
    }
}

/// Where the agent is in the contact center, as far as inheritance is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Offline in CCAI: Kustomer changes are ignored (the agent is not working calls).
    Offline,
    /// In a call or chat, or in wrap-up (a system status): changes wait as the next status.
    InConversation,
    /// Any other status: changes apply now.
    Free,
}

/// Who made a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Kustomer,
    Adapter,
}

/// What the policy remembers of an agent between changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncMemory {
    /// When the latest applied change was made, and by whom.
    pub last_change: Option<(Source, i64)>,
    /// Who chose the pending next status, and when.
    pub next_by: Option<(Source, i64)>,
}

/// Why a Kustomer change leaves the CCAI status alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ignored {
    /// Inheritance is off.
    Disabled,
    /// The admin mapped this Kustomer status to nothing.
    Unmapped,
    /// The agent is Offline in CCAI.
    Offline,
    /// The agent changed their status in the adapter after this Kustomer change was made.
    OlderThanAgentsChange,
    /// In a call: the agent chose their next status after this Kustomer change.
    AgentsNextIsLater,
    /// The agent already has this status (also how the adapter's own write-backs come back
    /// without echoing).
    AlreadyThere,
}

impl PriorityRule {
    /// Every rule.
    pub const ALL: [PriorityRule; 2] = [
        PriorityRule::LatestWins,
        PriorityRule::KustomerOverridesNext,
    ];

    /// The rule's name, as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            PriorityRule::LatestWins => "latest_wins",
            PriorityRule::KustomerOverridesNext => "kustomer_overrides_next",
        }
    }
}

impl Ignored {
    /// The reason's name, as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Ignored::Disabled => "disabled",
            Ignored::Unmapped => "unmapped",
            Ignored::Offline => "offline",
            Ignored::OlderThanAgentsChange => "older_than_agents_change",
            Ignored::AgentsNextIsLater => "agents_next_is_later",
            Ignored::AlreadyThere => "already_there",
        }
    }
}

/// What to do with a Kustomer change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", content = "value", rename_all = "snake_case")]
pub enum Decision {
    Ignore(Ignored),
    /// Set this CCAI status now.
    SetNow(i64),
    /// Keep this CCAI status as the next one, applied after the call and wrap-up.
    SetNext(i64),
}

/// A Kustomer status change made at `at`, for an agent whose CCAI status is `current` (and
/// pending next status `next`) in `condition`.
pub fn on_kustomer_change(
    config: &InheritanceConfig,
    memory: &SyncMemory,
    condition: Condition,
    current: Option<i64>,
    next: Option<i64>,
    kustomer_status: &str,
    at: i64,
) -> Decision {
    use Decision::{Ignore, SetNext, SetNow};
    if !config.enabled {
        return Ignore(Ignored::Disabled);
    }
    let Some(&target) = config.mapping.get(kustomer_status) else {
        return Ignore(Ignored::Unmapped);
    };
    match condition {
        Condition::Offline => Ignore(Ignored::Offline),
        Condition::InConversation => {
            if next == Some(target) {
                return Ignore(Ignored::AlreadyThere);
            }
            match (config.rule, memory.next_by) {
                (PriorityRule::LatestWins, Some((Source::Adapter, chosen))) if chosen > at => {
                    Ignore(Ignored::AgentsNextIsLater)
                }
                _ => SetNext(target),
            }
        }
        Condition::Free => {
            if current == Some(target) {
                return Ignore(Ignored::AlreadyThere);
            }
            match memory.last_change {
                Some((Source::Adapter, changed)) if changed > at => {
                    Ignore(Ignored::OlderThanAgentsChange)
                }
                _ => SetNow(target),
            }
        }
    }
}

/// Whether the agent's change made in the adapter at `at` is still the latest one: a Kustomer
/// change made after it (and applied first, having arrived first) wins under both rules. With
/// inheritance off, the adapter is the only source.
pub fn adapter_change_is_current(
    config: &InheritanceConfig,
    memory: &SyncMemory,
    at: i64,
    in_conversation: bool,
) -> bool {
    if !config.enabled {
        return true;
    }
    let latest = if in_conversation {
        memory.next_by
    } else {
        memory.last_change
    };
    !matches!(latest, Some((Source::Kustomer, changed)) if changed > at)
}

/// The memory after a change by `source` at `at` was applied (`as_next`: kept as the next
/// status during a conversation).
pub fn remember(memory: &mut SyncMemory, source: Source, at: i64, as_next: bool) {
    if as_next {
        memory.next_by = Some((source, at));
    } else {
        memory.last_change = Some((source, at));
    }
}

/// The pending next status applied or was cancelled: nobody's choice is pending any more.
pub fn next_settled(memory: &mut SyncMemory) {
    memory.next_by = None;
}

/// Bidirectional mode: the Kustomer status to write after the CCAI status became `ccai`, given
/// the agent's current Kustomer status. `None` when nothing must be written: the mode is off,
/// the platform set a system status (Kustomer marks the agent busy itself during a call), no
/// Kustomer status maps to it, or the current Kustomer status already maps to it (which is also
/// what stops a change from echoing back and forth).
pub fn write_back<'a>(
    config: &'a InheritanceConfig,
    ccai: i64,
    ccai_is_system: bool,
    current_kustomer: Option<&str>,
) -> Option<&'a str> {
    if !(config.enabled && config.bidirectional) || ccai_is_system {
        return None;
    }
    if current_kustomer.and_then(|k| config.mapping.get(k)) == Some(&ccai) {
        return None;
    }
    config.kustomer_status_for(ccai)
}

/// Whether the CCAI status with this id is set by the platform itself, never chosen by an agent
/// nor set through the API: Missed Call (-5), Wrap-up (-6), In-call (-7), In-chat (-8), and
/// every other id below 0 than the documented built-ins Unavailable (-1), Break (-2), Special
/// Task (-3), Meal (-4) and Offline (-10). The one rule for the gateway (what it offers and
/// refuses) and the simulator (what it refuses, as the platform does).
pub fn is_system_status(id: i64) -> bool {
    id < 0 && !matches!(id, -1 | -2 | -3 | -4 | -10)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AVAILABLE: i64 = 0;
    const UNAVAILABLE: i64 = -1;
    const BREAK: i64 = -2;
    const MEAL: i64 = -4;

    /// The French seed's example: 1 and 2 → A, 3 → B, 4 → D; plus an unmapped status.
    fn config(rule: PriorityRule) -> InheritanceConfig {
        InheritanceConfig {
            enabled: true,
            rule,
            bidirectional: false,
            mapping: [
                ("st-available", AVAILABLE),
                ("st-ready", AVAILABLE),
                ("st-lunch", MEAL),
                ("st-email", UNAVAILABLE),
            ]
            .into_iter()
            .map(|(k, c)| (k.to_owned(), c))
            .collect(),
        }
    }

    struct Row {
        name: &'static str,
        rule: PriorityRule,
        enabled: bool,
        memory: SyncMemory,
        condition: Condition,
        current: Option<i64>,
        next: Option<i64>,
        kustomer: &'static str,
        at: i64,
        want: Decision,
    }

    fn row(name: &'static str, want: Decision) -> Row {
        Row {
            name,
            rule: PriorityRule::LatestWins,
            enabled: true,
            memory: SyncMemory::default(),
            condition: Condition::Free,
            current: Some(BREAK),
            next: None,
            kustomer: "st-lunch",
            at: 1_000,
            want,
        }
    }

    #[test]
    fn kustomer_changes_table() {
        use Decision::*;
        use Ignored::*;
        let adapter_at = |at| SyncMemory {
            last_change: Some((Source::Adapter, at)),
            next_by: None,
        };
        let next_by = |source, at| SyncMemory {
            last_change: None,
            next_by: Some((source, at)),
        };
        let rows = [
            // Seed: "real-time agent status updates from Kustomer to CCAI Platform".
            row("a mapped Kustomer change applies now", SetNow(MEAL)),
            // Seed: the admin turns inheritance on; off, nothing flows.
            Row {
                enabled: false,
                ..row("inheritance off: Kustomer changes are ignored", Ignore(Disabled))
            },
            // French seed: many-to-one, "1 or 2 → A".
            Row {
                kustomer: "st-available",
                ..row("many-to-one: the first Kustomer status maps to A", SetNow(AVAILABLE))
            },
            Row {
                kustomer: "st-ready",
                ..row("many-to-one: the second Kustomer status maps to A too", SetNow(AVAILABLE))
            },
            // Issue: unmapped ones are shown as ignored.
            Row {
                kustomer: "st-busy",
                ..row("an unmapped Kustomer status is ignored", Ignore(Unmapped))
            },
            // Reference: "a CRM status change is ignored while the agent is Offline in CCAI".
            Row {
                condition: Condition::Offline,
                current: Some(-10),
                ..row("Offline in CCAI: a Kustomer change is ignored", Ignore(Offline))
            },
            // Seed: "during a call, as the next status".
            Row {
                condition: Condition::InConversation,
                current: Some(-7),
                ..row("in a call: the Kustomer change becomes the next status", SetNext(MEAL))
            },
            Row {
                condition: Condition::InConversation,
                current: Some(-6),
                ..row("in wrap-up: the Kustomer change becomes the next status", SetNext(MEAL))
            },
            Row {
                current: Some(MEAL),
                ..row("already in the mapped status: nothing to do", Ignore(AlreadyThere))
            },
            Row {
                condition: Condition::InConversation,
                current: Some(-7),
                next: Some(MEAL),
                ..row("in a call, already the next status: nothing to do", Ignore(AlreadyThere))
            },
            // Rule 1, "the latest status change is applied regardless whether from CRM or CCAI".
            Row {
                memory: adapter_at(900),
                ..row("rule 1: a Kustomer change after the agent's applies", SetNow(MEAL))
            },
            Row {
                memory: adapter_at(1_100),
                ..row(
                    "rule 1, race: a Kustomer change made before the agent's, arriving after it, is ignored",
                    Ignore(OlderThanAgentsChange),
                )
            },
            Row {
                condition: Condition::InConversation,
                current: Some(-7),
                next: Some(BREAK),
                memory: next_by(Source::Adapter, 900),
                ..row("rule 1, in a call: a Kustomer change after the agent's next replaces it", SetNext(MEAL))
            },
            Row {
                condition: Condition::InConversation,
                current: Some(-7),
                next: Some(BREAK),
                memory: next_by(Source::Adapter, 1_100),
                ..row(
                    "rule 1, in a call, race: the agent's later next status stays",
                    Ignore(AgentsNextIsLater),
                )
            },
            // Rule 2, "CRM always overrides agents' next status".
            Row {
                rule: PriorityRule::KustomerOverridesNext,
                condition: Condition::InConversation,
                current: Some(-7),
                next: Some(BREAK),
                memory: next_by(Source::Adapter, 1_100),
                ..row(
                    "rule 2, in a call: Kustomer replaces even the agent's later next status",
                    SetNext(MEAL),
                )
            },
            Row {
                rule: PriorityRule::KustomerOverridesNext,
                condition: Condition::InConversation,
                current: Some(-7),
                next: Some(BREAK),
                memory: next_by(Source::Adapter, 900),
                ..row("rule 2, in a call: Kustomer replaces the agent's earlier next status", SetNext(MEAL))
            },
            Row {
                rule: PriorityRule::KustomerOverridesNext,
                memory: adapter_at(1_100),
                ..row(
                    "rule 2, outside calls: the latest change still wins (race ignored)",
                    Ignore(OlderThanAgentsChange),
                )
            },
            Row {
                rule: PriorityRule::KustomerOverridesNext,
                condition: Condition::Offline,
                ..row("rule 2, Offline: still ignored", Ignore(Offline))
            },
        ];
        for row in rows {
            let config = InheritanceConfig {
                enabled: row.enabled,
                rule: row.rule,
                ..config(row.rule)
            };
            let got = on_kustomer_change(
                &config,
                &row.memory,
                row.condition,
                row.current,
                row.next,
                row.kustomer,
                row.at,
            );
            assert_eq!(got, row.want, "{}", row.name);
        }
    }

    #[test]
    fn a_race_resolves_the_same_whichever_arrives_first_under_rule_1() {
        // The agent picks Break at 1_000 in the adapter; Kustomer says Lunch at 1_050.
        // Arrival order A then K: K is later, it applies.
        let config = config(PriorityRule::LatestWins);
        let mut memory = SyncMemory::default();
        remember(&mut memory, Source::Adapter, 1_000, false);
        let decision = on_kustomer_change(
            &config,
            &memory,
            Condition::Free,
            Some(BREAK),
            None,
            "st-lunch",
            1_050,
        );
        assert_eq!(decision, Decision::SetNow(MEAL));
        // Arrival order K then A: K applies first, then the adapter's older change arrives.
        // The gateway ranks the adapter's change the same way: older than the last applied one,
        // it is refused (see `adapter_change_is_current`).
        let mut memory = SyncMemory::default();
        remember(&mut memory, Source::Kustomer, 1_050, false);
        assert!(!adapter_change_is_current(&config, &memory, 1_000, false));
        assert!(adapter_change_is_current(&config, &memory, 1_100, false));
    }

    #[test]
    fn write_back_table() {
        let mut bidirectional = config(PriorityRule::LatestWins);
        bidirectional.bidirectional = true;
        let one_way = config(PriorityRule::LatestWins);
        /// Name, configuration, new CCAI status, whether it is a system one, current Kustomer
        /// status, what is written.
        type Row<'a> = (
            &'a str,
            &'a InheritanceConfig,
            i64,
            bool,
            Option<&'a str>,
            Option<&'a str>,
        );
        let rows: [Row<'_>; 7] = [
            (
                "one-way mode writes nothing back",
                &one_way,
                MEAL,
                false,
                Some("st-available"),
                None,
            ),
            (
                "a CCAI change is written as its mapped Kustomer status",
                &bidirectional,
                MEAL,
                false,
                Some("st-available"),
                Some("st-lunch"),
            ),
            (
                "many-to-one: the first Kustomer status mapped to it",
                &bidirectional,
                AVAILABLE,
                false,
                Some("st-lunch"),
                Some("st-available"),
            ),
            (
                "no echo: Kustomer already says a status mapped to it",
                &bidirectional,
                AVAILABLE,
                false,
                Some("st-ready"),
                None,
            ),
            (
                "system statuses are Kustomer's own business (busy in a call)",
                &bidirectional,
                -7,
                true,
                Some("st-available"),
                None,
            ),
            (
                "a CCAI status no Kustomer status maps to is not written",
                &bidirectional,
                BREAK,
                false,
                Some("st-available"),
                None,
            ),
            (
                "unknown current Kustomer status: write",
                &bidirectional,
                UNAVAILABLE,
                false,
                None,
                Some("st-email"),
            ),
        ];
        for (name, config, ccai, system, current, want) in rows {
            assert_eq!(write_back(config, ccai, system, current), want, "{name}");
        }
    }

    #[test]
    fn the_adapters_own_write_back_does_not_echo() {
        // Bidirectional: the agent picks Meal in the adapter; the gateway writes st-lunch to
        // Kustomer; Kustomer reports st-lunch back: the policy sees the agent already in Meal.
        let mut config = config(PriorityRule::LatestWins);
        config.bidirectional = true;
        let written = write_back(&config, MEAL, false, Some("st-available"));
        assert_eq!(written, Some("st-lunch"));
        let mut memory = SyncMemory::default();
        remember(&mut memory, Source::Adapter, 2_000, false);
        let echo = on_kustomer_change(
            &config,
            &memory,
            Condition::Free,
            Some(MEAL),
            None,
            "st-lunch",
            2_010,
        );
        assert_eq!(echo, Decision::Ignore(Ignored::AlreadyThere));
    }

    #[test]
    fn configuration_checks_say_every_problem() {
        let kustomer = [
            ("st-available".to_owned(), "Available".to_owned()),
            ("st-lunch".to_owned(), "Lunch".to_owned()),
        ];
        let ccai = [
            (0, "Available".to_owned(), false),
            (-4, "Meal".to_owned(), false),
            (-7, "In-call".to_owned(), true),
        ];
        let catalogue = Catalogue {
            kustomer: &kustomer,
            ccai: &ccai,
        };
        let good = InheritanceConfig {
            enabled: true,
            rule: PriorityRule::KustomerOverridesNext,
            bidirectional: true,
            mapping: [("st-available".to_owned(), 0), ("st-lunch".to_owned(), -4)].into(),
        };
        assert_eq!(good.problems(&catalogue), vec![]);
        let bad = InheritanceConfig {
            enabled: false,
            rule: PriorityRule::LatestWins,
            bidirectional: true,
            mapping: [
                ("st-gone".to_owned(), 0),
                ("st-available".to_owned(), -7),
                ("st-lunch".to_owned(), 99),
            ]
            .into(),
        };
        assert_eq!(
            bad.problems(&catalogue),
            vec![
                ConfigProblem::SystemTarget {
                    kustomer: "st-available".into(),
                    name: "In-call".into()
                },
                ConfigProblem::UnknownKustomerStatus("st-gone".into()),
                ConfigProblem::UnknownCcaiStatus {
                    kustomer: "st-lunch".into(),
                    ccai: 99
                },
                ConfigProblem::BidirectionalWithoutInheritance,
            ]
        );
    }

    #[test]
    fn the_wire_shape_of_a_decision() {
        assert_eq!(
            serde_json::to_value(Decision::SetNext(-2)).unwrap(),
            serde_json::json!({"action": "set_next", "value": -2})
        );
        assert_eq!(
            serde_json::to_value(Decision::Ignore(Ignored::Offline)).unwrap(),
            serde_json::json!({"action": "ignore", "value": "offline"})
        );
    }

    #[test]
    fn system_statuses_are_the_platforms_own_and_unknown_negative_ids() {
        for id in [-5, -6, -7, -8, -9, -11, -100] {
            assert!(super::is_system_status(id), "{id} is set by the platform");
        }
        for id in [0, -1, -2, -3, -4, -10, 1, 2, 99] {
            assert!(!super::is_system_status(id), "{id} can be chosen");
        }
    }
}
