//! The admins' settings page: its own bundle (`settings.html`, binary `kustomer-adapter-settings`),
//! as Kustomer loads an app's custom settings page (the app definition's `settingsPageConfig`
//! URL) in an iframe of its Settings menu, for administrators only. The agent widget carries none
//! of it.
//!
//! - status inheritance: on or off, the priority rule, bidirectional mode, the status mapping;
//! - the CRM sync: the abandoned-call option, the SDK data mapping, the custom fields;
//! - the CRM sync's dead letters, each to retry.
//!
//! The page uses the session the agent widget keeps in this origin's storage (an admin signs in
//! in the widget first), reads Kustomer's statuses through the host like the widget, and speaks
//! the host's language.

use adapter_core::{
    agent_api::{
        CrmSettings, CrmSettingsUpdate, DeadLetter, DeadLetters, InheritanceSettings,
        InheritanceView, KustomerStatus, Outbox,
    },
    crm::FieldMapping,
    lang::Lang,
};
use leptos::prelude::*;

use crate::{
    agent,
    bridge::{use_host_bridge, UseHostBridgeOptions, UseHostBridgeReturn},
    components::InheritanceSettingsPanel,
    effects::effect,
    gateway::{self, body_of, decode, ApiFailure, GatewayError, Method},
    i18n::{refusal, use_i18n, I18n},
    storage::KeyValueStore,
};

/// The settings page's own texts (the agent bundle does not carry them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingsText {
    Title,
    SignInFirst,
    AdminsOnly,
    CrmTitle,
    CreateAbandoned,
    SdkMapping,
    SdkMappingHelp,
    CustomFields,
    CustomFieldsDone,
    CustomFieldsNone,
    ProvisionFields,
    DeadLettersTitle,
    QueueCounts,
    NoDeadLetters,
    Retry,
    Refresh,
}

impl SettingsText {
    /// Every variant, for completeness tests.
    pub const ALL: [SettingsText; 16] = [
        SettingsText::Title,
        SettingsText::SignInFirst,
        SettingsText::AdminsOnly,
        SettingsText::CrmTitle,
        SettingsText::CreateAbandoned,
        SettingsText::SdkMapping,
        SettingsText::SdkMappingHelp,
        SettingsText::CustomFields,
        SettingsText::CustomFieldsDone,
        SettingsText::CustomFieldsNone,
        SettingsText::ProvisionFields,
        SettingsText::DeadLettersTitle,
        SettingsText::QueueCounts,
        SettingsText::NoDeadLetters,
        SettingsText::Retry,
        SettingsText::Refresh,
    ];

    /// The wording in `lang`.
    pub fn in_lang(self, lang: Lang) -> &'static str {
        let (en, fr) = match self {
            SettingsText::Title => (
                "CCAI Platform adapter settings",
                "Réglages de l’adaptateur CCAI Platform",
            ),
            SettingsText::SignInFirst => (
                "Sign in to the contact center in the adapter (Kustomer’s sidebar) first, then open these settings again.",
                "Connectez-vous d’abord au centre de contact dans l’adaptateur (barre latérale de Kustomer), puis rouvrez ces réglages.",
            ),
            SettingsText::AdminsOnly => (
                "Only the adapter’s administrators can change these settings.",
                "Seuls les administrateurs de l’adaptateur peuvent modifier ces réglages.",
            ),
            SettingsText::CrmTitle => ("Kustomer sync", "Synchronisation Kustomer"),
            SettingsText::CreateAbandoned => (
                "Create a conversation for abandoned calls",
                "Créer une conversation pour les appels abandonnés",
            ),
            SettingsText::SdkMapping => (
                "SDK custom data to conversation fields",
                "Données personnalisées du SDK vers les champs de conversation",
            ),
            SettingsText::SdkMappingHelp => (
                "One per line: sdk_key = conversation field (e.g. order_id = orderIdStr).",
                "Une par ligne : clé_sdk = champ de conversation (par ex. order_id = orderIdStr).",
            ),
            SettingsText::CustomFields => ("Custom fields in Kustomer", "Champs personnalisés dans Kustomer"),
            SettingsText::CustomFieldsDone => ("Created.", "Créés."),
            SettingsText::CustomFieldsNone => ("Not created yet.", "Pas encore créés."),
            SettingsText::ProvisionFields => ("Create the custom fields", "Créer les champs personnalisés"),
            SettingsText::DeadLettersTitle => ("Failed Kustomer updates", "Mises à jour Kustomer en échec"),
            SettingsText::QueueCounts => ("Pending, done, failed:", "En attente, faites, en échec :"),
            SettingsText::NoDeadLetters => ("None.", "Aucune."),
            SettingsText::Retry => ("Retry", "Relancer"),
            SettingsText::Refresh => ("Refresh", "Actualiser"),
        };
        if lang == Lang::Fr {
            fr
        } else {
            en
        }
    }
}

/// The page's texts, reactive.
fn st(i18n: I18n, text: SettingsText) -> Signal<&'static str> {
    let lang = i18n.lang;
    Signal::derive(move || text.in_lang(lang.get()))
}

/// The gateway's admin API with the session the widget keeps in this origin's storage.
/// `Copy`: hand it to any view.
#[derive(Clone, Copy)]
pub struct AdminClient {
    inner: StoredValue<(Result<String, GatewayError>, KeyValueStore), LocalStorage>,
}

impl AdminClient {
    pub fn new(base: Result<String, GatewayError>, store: KeyValueStore) -> Self {
        AdminClient {
            inner: StoredValue::new_local((base, store)),
        }
    }

    /// Whether a session is kept (the admin signed in in the widget).
    pub fn signed_in(&self) -> bool {
        self.session().is_some()
    }

    fn session(&self) -> Option<agent::Session> {
        self.inner
            .try_with_value(|(_, store)| agent::restore(store))
            .flatten()
    }

    /// One request with the kept session's token (read each time: the widget rotates it).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<String, ApiFailure> {
        let base = self
            .inner
            .try_with_value(|(base, _)| base.clone())
            .unwrap_or_else(|| Err(GatewayError::BadUrl("(disposed)".into())))
            .map_err(ApiFailure::transport)?;
        let Some(session) = self.session() else {
            return Err(ApiFailure {
                status: 401,
                code: "unauthenticated".into(),
                message: String::new(),
            });
        };
        gateway::request(&base, method, path, Some(&session.token), body.as_deref()).await
    }
}

/// The whole settings page, as its binary mounts it.
#[component]
pub fn SettingsApp() -> impl IntoView {
    SettingsPage(SettingsPageProps {
        store: KeyValueStore::open(),
        base: gateway::base_url(),
        host: UseHostBridgeOptions::default(),
    })
}

fn failure_text(lang: Lang, failure: &ApiFailure) -> String {
    refusal(lang, &failure.code, &failure.message)
}

/// The settings page with its storage, gateway and host given, so tests can choose them.
#[component]
pub fn SettingsPage(
    /// Where the widget keeps the session.
    store: KeyValueStore,
    /// The gateway's base URL.
    base: Result<String, GatewayError>,
    /// How the page reaches the host (Kustomer).
    host: UseHostBridgeOptions,
) -> impl IntoView {
    let i18n = use_i18n();
    let bridge = use_host_bridge(host);
    let client = AdminClient::new(base, store);
    let signed_in = client.signed_in();
    crate::hooks::use_host_language(bridge, i18n);
    let inheritance = {
        LocalResource::new(move || async move {
            client
                .call(Method::Get, "/status-inheritance", None)
                .await
                .and_then(decode::<InheritanceView>)
        })
    };
    let kustomer_statuses = kustomer_statuses(bridge);
    let save = {
        Action::new_local(move |settings: &InheritanceSettings| {
            let body = body_of(settings);
            async move {
                let saved = client.call(Method::Put, "/status-inheritance", body).await;
                match saved {
                    Ok(_) => {
                        agent::announce_settings_saved();
                        inheritance.refetch();
                        Ok(())
                    }
                    Err(failure) => Err(failure_text(i18n.lang.get_untracked(), &failure)),
                }
            }
        })
    };
    let saved = Signal::derive(move || inheritance.get().and_then(Result::ok));
    let admin = move || saved.with(|v| v.as_ref().is_some_and(|v| v.admin));
    let load_error = move || {
        inheritance
            .get()
            .and_then(Result::err)
            .map(|failure| failure_text(i18n.lang.get(), &failure))
    };
    view! {
        <main class="settings-page" aria-labelledby="settings-title">
            <h1 id="settings-title">{st(i18n, SettingsText::Title)}</h1>
            {(!signed_in).then(|| view! {
                <p class="notice notice-sign-in-first" role="note">{st(i18n, SettingsText::SignInFirst)}</p>
            })}
            <p class="form-error" role="alert" hidden=move || load_error().is_none()>{load_error}</p>
            <Show when=move || saved.with(|v| v.as_ref().is_some_and(|v| !v.admin))>
                <p class="notice notice-admins-only" role="note">{st(i18n, SettingsText::AdminsOnly)}</p>
            </Show>
            <Show when=admin>
                <InheritanceSettingsPanel saved=saved kustomer_statuses=kustomer_statuses save=save />
                <CrmSettingsPanel client=client />
                <DeadLettersPanel client=client />
            </Show>
        </main>
    }
}

/// Kustomer's routing statuses, read through the host once it has introduced the user.
fn kustomer_statuses(bridge: UseHostBridgeReturn) -> Signal<Result<Vec<KustomerStatus>, String>> {
    let statuses = LocalResource::new(move || {
        let known = bridge.state.with(|s| s.user.is_some());
        async move {
            if !known {
                return Err(String::new());
            }
            let host = bridge.bridge().ok_or_else(|| "no host".to_owned())?;
            let answer = host
                .request("GET", "/v1/routing/statuses", None)
                .await
                .map_err(|e| e.to_string())?;
            if answer.status == 200 {
                Ok(crate::tabs::kustomer_statuses(&answer.body))
            } else {
                Err(format!("HTTP {}", answer.status))
            }
        }
    });
    Signal::derive(move || statuses.get().unwrap_or_else(|| Err(String::new())))
}

/// `sdk_key = field` lines as a mapping; blank lines are skipped.
pub fn parse_mapping(text: &str) -> Result<Vec<FieldMapping>, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| match line.split_once('=') {
            Some((key, field)) if !key.trim().is_empty() && !field.trim().is_empty() => {
                Ok(FieldMapping {
                    sdk_key: key.trim().to_owned(),
                    field: field.trim().to_owned(),
                })
            }
            _ => Err(line.to_owned()),
        })
        .collect()
}

/// A mapping as `sdk_key = field` lines.
pub fn mapping_text(mapping: &[FieldMapping]) -> String {
    mapping
        .iter()
        .map(|m| format!("{} = {}", m.sdk_key, m.field))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The CRM sync's settings: the abandoned-call option, the SDK data mapping, the custom fields.
#[component]
fn CrmSettingsPanel(client: AdminClient) -> impl IntoView {
    let i18n = use_i18n();
    let settings = {
        LocalResource::new(move || async move {
            client
                .call(Method::Get, "/crm/settings", None)
                .await
                .and_then(decode::<CrmSettings>)
        })
    };
    let abandoned = RwSignal::new(true);
    let mapping = RwSignal::new(String::new());
    let provisioned = RwSignal::new(None::<i64>);
    effect(move || {
        if let Some(Ok(saved)) = settings.get() {
            abandoned.set(saved.create_abandoned);
            mapping.set(mapping_text(&saved.mapping));
            provisioned.set(saved.custom_fields_at_ms);
        }
    });
    let result = RwSignal::new(None::<Result<(), String>>);
    let busy = RwSignal::new(false);
    let save = {
        move |event: leptos::ev::SubmitEvent| {
            event.prevent_default();
            let lang = i18n.lang.get_untracked();
            let parsed = match parse_mapping(&mapping.get_untracked()) {
                Ok(parsed) => parsed,
                Err(line) => {
                    result.set(Some(Err(format!(
                        "{} ({line})",
                        SettingsText::SdkMappingHelp.in_lang(lang)
                    ))));
                    return;
                }
            };
            let body = body_of(&CrmSettingsUpdate {
                create_abandoned: Some(abandoned.get_untracked()),
                mapping: Some(parsed),
            });
            busy.set(true);
            leptos::task::spawn_local(async move {
                let saved = client.call(Method::Put, "/crm/settings", body).await;
                let _ = busy.try_set(false);
                let _ = result.try_set(Some(match saved {
                    Ok(_) => Ok(()),
                    Err(failure) => Err(match failure.code.as_str() {
                        // The problem is in the admin's own words: show the gateway's sentence.
                        "invalid_settings" => failure.message,
                        _ => failure_text(lang, &failure),
                    }),
                }));
            });
        }
    };
    let provision = move |_| {
        busy.set(true);
        leptos::task::spawn_local(async move {
            let done = client.call(Method::Post, "/crm/custom-fields", None).await;
            let _ = busy.try_set(false);
            match done {
                Ok(_) => {
                    let _ = provisioned.try_set(Some(js_sys::Date::now() as i64));
                    let _ = result.try_set(Some(Ok(())));
                }
                Err(failure) => {
                    let lang = i18n.lang.get_untracked();
                    let _ = result.try_set(Some(Err(failure_text(lang, &failure))));
                }
            }
        });
    };
    view! {
        <section class="settings-section crm-settings" aria-labelledby="crm-title">
            <h2 id="crm-title">{st(i18n, SettingsText::CrmTitle)}</h2>
            <form on:submit=save>
                <label class="check">
                    <input
                        type="checkbox"
                        name="create_abandoned"
                        prop:checked=move || abandoned.get()
                        on:change=move |e| abandoned.set(event_target_checked(&e))
                    />
                    {st(i18n, SettingsText::CreateAbandoned)}
                </label>
                <label class="field" for="sdk-mapping">{st(i18n, SettingsText::SdkMapping)}</label>
                <textarea
                    id="sdk-mapping"
                    name="mapping"
                    rows="3"
                    aria-describedby="sdk-mapping-help"
                    prop:value=move || mapping.get()
                    on:input=move |e| mapping.set(event_target_value(&e))
                ></textarea>
                <p id="sdk-mapping-help" class="help">{st(i18n, SettingsText::SdkMappingHelp)}</p>
                <p class="custom-fields">
                    <span>{st(i18n, SettingsText::CustomFields)} ": "</span>
                    <span class="custom-fields-state">
                        {move || {
                            if provisioned.get().is_some() {
                                SettingsText::CustomFieldsDone.in_lang(i18n.lang.get())
                            } else {
                                SettingsText::CustomFieldsNone.in_lang(i18n.lang.get())
                            }
                        }}
                    </span>
                    " "
                    <button type="button" class="button provision" disabled=move || busy.get() on:click=provision>
                        {st(i18n, SettingsText::ProvisionFields)}
                    </button>
                </p>
                <button type="submit" class="button primary" disabled=move || busy.get()>
                    {i18n.text(crate::i18n::Text::Save)}
                </button>
                <p class="settings-result" role="status">
                    {move || match result.get() {
                        Some(Ok(())) => Some(i18n.t(crate::i18n::Text::Saved).to_owned()),
                        Some(Err(message)) => Some(message),
                        None => None,
                    }}
                </p>
            </form>
        </section>
    }
}

/// The CRM sync's queues and the operations it gave up on, each to retry.
#[component]
fn DeadLettersPanel(client: AdminClient) -> impl IntoView {
    let i18n = use_i18n();
    let load = {
        LocalResource::new(move || async move {
            let outbox = client
                .call(Method::Get, "/crm/outbox", None)
                .await
                .and_then(decode::<Outbox>)?;
            let dead = client
                .call(Method::Get, "/crm/dead-letters", None)
                .await
                .and_then(decode::<DeadLetters>)?;
            Ok::<_, ApiFailure>((outbox, dead.dead_letters))
        })
    };
    let problem = RwSignal::new(None::<String>);
    let retry = move |seq: i64| {
        leptos::task::spawn_local(async move {
            let path = format!("/crm/dead-letters/{seq}/retry");
            match client.call(Method::Post, &path, None).await {
                Ok(_) => {
                    let _ = problem.try_set(None);
                    load.refetch();
                }
                Err(failure) => {
                    let lang = i18n.lang.get_untracked();
                    let _ = problem.try_set(Some(failure_text(lang, &failure)));
                }
            }
        });
    };
    let row = move |letter: DeadLetter| {
        let seq = letter.seq;
        let what = match letter.operation.as_str() {
            Some(op) => format!("#{seq} {} {op}", letter.rule),
            None => format!("#{seq} {}", letter.rule),
        };
        view! {
            <li class="dead-letter" data-seq=seq.to_string()>
                <span class="dead-letter-what">{what}</span>
                <span class="dead-letter-why">{letter.reason.unwrap_or_default()}</span>
                <button type="button" class="button retry" on:click=move |_| retry(seq)>
                    {st(i18n, SettingsText::Retry)}
                </button>
            </li>
        }
    };
    view! {
        <section class="settings-section dead-letters" aria-labelledby="dead-letters-title">
            <h2 id="dead-letters-title">{st(i18n, SettingsText::DeadLettersTitle)}</h2>
            {move || match load.get() {
                None => None,
                Some(Err(failure)) => Some(view! {
                    <p class="form-error">{failure_text(i18n.lang.get(), &failure)}</p>
                }.into_any()),
                Some(Ok((outbox, letters))) => {
                    let counts = format!("{} {} · {} · {}", SettingsText::QueueCounts.in_lang(i18n.lang.get()), outbox.pending, outbox.done, outbox.dead);
                    let list = if letters.is_empty() {
                        view! { <p class="no-dead-letters">{st(i18n, SettingsText::NoDeadLetters)}</p> }.into_any()
                    } else {
                        view! { <ul class="dead-letter-list">{letters.into_iter().map(row).collect_view()}</ul> }.into_any()
                    };
                    Some(view! { <p class="queue-counts">{counts}</p> {list} }.into_any())
                }
            }}
            <p class="form-error" role="alert" hidden=move || problem.with(Option::is_none)>{move || problem.get()}</p>
            <button type="button" class="button refresh" on:click=move |_| load.refetch()>
                {st(i18n, SettingsText::Refresh)}
            </button>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_settings_text_has_both_languages() {
        for text in SettingsText::ALL {
            assert!(!text.in_lang(Lang::En).is_empty(), "{text:?}");
            assert_ne!(text.in_lang(Lang::En), text.in_lang(Lang::Fr), "{text:?}");
        }
    }

    #[test]
    fn mappings_read_and_write_as_lines() {
        let mapping = parse_mapping(" order_id = orderIdStr \n\nplan=planStr").unwrap_or_default();
        assert_eq!(mapping.len(), 2);
        assert_eq!(mapping[0].sdk_key, "order_id");
        assert_eq!(mapping[1].field, "planStr");
        assert_eq!(
            mapping_text(&mapping),
            "order_id = orderIdStr\nplan = planStr"
        );
        assert_eq!(
            parse_mapping("no equals sign"),
            Err("no equals sign".into())
        );
    }
}
