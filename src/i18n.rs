//! The one translation layer: every user-facing text is a [`Text`], with its English and French
//! wording side by side, so a text cannot exist in one language only. The language follows the
//! host's when it says one, else the browser's preferences.

use std::cell::Cell;

pub use adapter_core::lang::Lang;
use adapter_core::phone::{DialNumber, PhoneError};
use leptos::prelude::*;

use crate::effects::effect;

/// Every fixed user-facing text of the widget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Text {
    AppName,
    AdapterLabel,
    StatusLabel,
    StatusNotSignedIn,
    Minimise,
    Restore,
    Connecting,
    Connected,
    StorageBlocked,
    CrashTitle,
    CrashHelp,
    CrashDetails,
    Reload,
    DialPadTitle,
    Keypad,
    Backspace,
    ClearNumber,
    Call,
    CallNeedsSignIn,
    CustomerNumbers,
    Standalone,
    Diagnostics,
    SignInTitle,
    Email,
    Password,
    SignIn,
    SignOut,
    SigningIn,
    WaitingForKustomer,
    SignInNeedsKustomer,
    StatusMenu,
    NextStatus,
    StatusSystem,
    StreamLive,
    Reconnecting,
    IncomingCall,
    OutgoingCall,
    IncomingChat,
    Chat,
    CallDialing,
    CallRinging,
    CallConnected,
    CallOnHold,
    CallWrapUp,
    CallEnded,
    Answer,
    Hold,
    Resume,
    Mute,
    Unmute,
    EndCall,
    Transfer,
    TransferTo,
    SendTones,
    Tones,
    HangUpAndCallBack,
    CallBack,
    LastCall,
    CallTimer,
    Muted,
    CancelNextStatus,
    ActiveInAnotherTab,
    UseHere,
    OtherTabInCall,
    LoginNotInherited,
    InheritanceTitle,
    InheritanceOn,
    RuleLatest,
    RuleKustomer,
    Bidirectional,
    KustomerStatusColumn,
    CcaiStatusColumn,
    IgnoredStatus,
    Save,
    Saved,
    KustomerStatusesUnavailable,
    OtherBrowser,
    HostNotAllowed,
    TooManyStreams,
}

impl Text {
    /// Every variant, for completeness tests.
    pub const ALL: [Text; 79] = [
        Text::AppName,
        Text::AdapterLabel,
        Text::StatusLabel,
        Text::StatusNotSignedIn,
        Text::Minimise,
        Text::Restore,
        Text::Connecting,
        Text::Connected,
        Text::StorageBlocked,
        Text::CrashTitle,
        Text::CrashHelp,
        Text::CrashDetails,
        Text::Reload,
        Text::DialPadTitle,
        Text::Keypad,
        Text::Backspace,
        Text::ClearNumber,
        Text::Call,
        Text::CallNeedsSignIn,
        Text::CustomerNumbers,
        Text::Standalone,
        Text::Diagnostics,
        Text::SignInTitle,
        Text::Email,
        Text::Password,
        Text::SignIn,
        Text::SignOut,
        Text::SigningIn,
        Text::WaitingForKustomer,
        Text::SignInNeedsKustomer,
        Text::StatusMenu,
        Text::NextStatus,
        Text::StatusSystem,
        Text::StreamLive,
        Text::Reconnecting,
        Text::IncomingCall,
        Text::OutgoingCall,
        Text::IncomingChat,
        Text::Chat,
        Text::CallDialing,
        Text::CallRinging,
        Text::CallConnected,
        Text::CallOnHold,
        Text::CallWrapUp,
        Text::CallEnded,
        Text::Answer,
        Text::Hold,
        Text::Resume,
        Text::Mute,
        Text::Unmute,
        Text::EndCall,
        Text::Transfer,
        Text::TransferTo,
        Text::SendTones,
        Text::Tones,
        Text::HangUpAndCallBack,
        Text::CallBack,
        Text::LastCall,
        Text::CallTimer,
        Text::Muted,
        Text::CancelNextStatus,
        Text::ActiveInAnotherTab,
        Text::UseHere,
        Text::OtherTabInCall,
        Text::LoginNotInherited,
        Text::InheritanceTitle,
        Text::InheritanceOn,
        Text::RuleLatest,
        Text::RuleKustomer,
        Text::Bidirectional,
        Text::KustomerStatusColumn,
        Text::CcaiStatusColumn,
        Text::IgnoredStatus,
        Text::Save,
        Text::Saved,
        Text::KustomerStatusesUnavailable,
        Text::OtherBrowser,
        Text::HostNotAllowed,
        Text::TooManyStreams,
    ];

    /// The wording in `lang`.
    pub fn in_lang(self, lang: Lang) -> &'static str {
        let (en, fr) = match self {
            Text::AppName => ("CCAI Platform", "CCAI Platform"),
            Text::AdapterLabel => ("Contact center adapter", "Adaptateur du centre de contact"),
            Text::StatusLabel => ("Contact center status", "Statut du centre de contact"),
            Text::StatusNotSignedIn => ("Not signed in", "Non connecté"),
            Text::Minimise => ("Minimise the adapter", "Réduire l’adaptateur"),
            Text::Restore => ("Restore the adapter", "Agrandir l’adaptateur"),
            Text::Connecting => ("Connecting to the gateway…", "Connexion à la passerelle…"),
            Text::Connected => ("Connected", "Connecté"),
            Text::StorageBlocked => (
                "This browser blocks storage for the adapter: settings such as the minimised state will not survive a reload.",
                "Ce navigateur bloque le stockage pour l’adaptateur : les réglages comme l’état réduit ne survivront pas à un rechargement.",
            ),
            Text::CrashTitle => (
                "The adapter stopped after an internal error.",
                "L’adaptateur s’est arrêté après une erreur interne.",
            ),
            Text::CrashHelp => (
                "Reload it to continue. If this happens again, send the details below to your administrator.",
                "Rechargez-le pour continuer. Si cela se reproduit, envoyez les détails ci-dessous à votre administrateur.",
            ),
            Text::CrashDetails => ("Details", "Détails"),
            Text::Reload => ("Reload the adapter", "Recharger l’adaptateur"),
            Text::DialPadTitle => ("Number to call", "Numéro à appeler"),
            Text::Keypad => ("Keypad", "Clavier"),
            Text::Backspace => ("Delete the last character", "Effacer le dernier caractère"),
            Text::ClearNumber => ("Clear the number", "Effacer le numéro"),
            Text::Call => ("Call", "Appeler"),
            Text::CallNeedsSignIn => (
                "Sign in to the contact center to place calls.",
                "Connectez-vous au centre de contact pour passer des appels.",
            ),
            Text::CustomerNumbers => ("Customer’s numbers", "Numéros du client"),
            Text::Standalone => (
                "Running outside Kustomer: click-to-call and screen pops are off.",
                "Hors de Kustomer : l’appel direct et l’ouverture des conversations sont désactivés.",
            ),
            Text::Diagnostics => ("Diagnostics", "Journal de diagnostic"),
            Text::SignInTitle => ("Sign in to the contact center", "Connexion au centre de contact"),
            Text::Email => ("Email", "E-mail"),
            Text::Password => ("Password", "Mot de passe"),
            Text::SignIn => ("Sign in", "Se connecter"),
            Text::SignOut => ("Sign out", "Se déconnecter"),
            Text::SigningIn => ("Signing in…", "Connexion…"),
            Text::WaitingForKustomer => ("Waiting for Kustomer to say who you are…", "En attente de l’identité transmise par Kustomer…"),
            Text::SignInNeedsKustomer => ("Open the adapter inside Kustomer to sign in: it must know your Kustomer user.", "Ouvrez l’adaptateur dans Kustomer pour vous connecter : il doit connaître votre utilisateur Kustomer."),
            Text::StatusMenu => ("Set your contact center status", "Choisir votre statut du centre de contact"),
            Text::NextStatus => ("Next:", "Ensuite :"),
            Text::StatusSystem => ("Set by the contact center", "Défini par le centre de contact"),
            Text::StreamLive => ("Live", "En direct"),
            Text::Reconnecting => ("Reconnecting…", "Reconnexion…"),
            Text::IncomingCall => ("Incoming call", "Appel entrant"),
            Text::OutgoingCall => ("Outgoing call", "Appel sortant"),
            Text::IncomingChat => ("Incoming chat", "Chat entrant"),
            Text::Chat => ("Chat", "Discussion"),
            Text::CallDialing => ("Dialing…", "Numérotation…"),
            Text::CallRinging => ("Ringing", "Sonnerie"),
            Text::CallConnected => ("Connected", "En communication"),
            Text::CallOnHold => ("On hold", "En attente"),
            Text::CallWrapUp => ("Wrap-up", "Post-appel"),
            Text::CallEnded => ("Ended", "Terminé"),
            Text::Answer => ("Answer", "Répondre"),
            Text::Hold => ("Hold", "Mettre en attente"),
            Text::Resume => ("Resume", "Reprendre"),
            Text::Mute => ("Mute", "Couper le micro"),
            Text::Unmute => ("Unmute", "Rétablir le micro"),
            Text::EndCall => ("End", "Raccrocher"),
            Text::Transfer => ("Transfer", "Transférer"),
            Text::TransferTo => ("Transfer to", "Transférer à"),
            Text::SendTones => ("Send tones", "Envoyer les tonalités"),
            Text::Tones => ("Tones to send", "Tonalités à envoyer"),
            Text::HangUpAndCallBack => ("Hang up and call back", "Raccrocher et rappeler"),
            Text::CallBack => ("Call back", "Rappeler"),
            Text::LastCall => ("Last call", "Dernier appel"),
            Text::CallTimer => ("Call duration", "Durée de l’appel"),
            Text::Muted => ("Microphone off", "Micro coupé"),
            Text::CancelNextStatus => (
                "Cancel the next status: Available after the call",
                "Annuler le statut suivant : Disponible après l’appel",
            ),
            Text::ActiveInAnotherTab => (
                "Active in another tab: this tab does not sync your Kustomer status.",
                "Actif dans un autre onglet : cet onglet ne synchronise pas votre statut Kustomer.",
            ),
            Text::UseHere => (
                "Use here",
                "Utiliser ici",
            ),
            Text::OtherTabInCall => (
                "The other tab is in a call: it keeps the sync until the call ends.",
                "L’autre onglet est en communication : il garde la synchronisation jusqu’à la fin de l’appel.",
            ),
            Text::LoginNotInherited => (
                "Your Kustomer status is not read at sign-in (Kustomer does not offer it): your contact-center status follows your next change in Kustomer.",
                "Votre statut Kustomer n’est pas lu à la connexion (Kustomer ne le permet pas) : votre statut du centre de contact suivra votre prochain changement dans Kustomer.",
            ),
            Text::InheritanceTitle => (
                "Status inheritance (admin)",
                "Héritage des statuts (admin)",
            ),
            Text::InheritanceOn => (
                "Inherit agent statuses from Kustomer",
                "Hériter les statuts des agents de Kustomer",
            ),
            Text::RuleLatest => (
                "The latest change wins, from Kustomer or the adapter",
                "Le dernier changement l’emporte, de Kustomer ou de l’adaptateur",
            ),
            Text::RuleKustomer => (
                "Kustomer always overrides the agent’s next status",
                "Kustomer remplace toujours le statut suivant de l’agent",
            ),
            Text::Bidirectional => (
                "Also write contact-center statuses back to Kustomer",
                "Écrire aussi les statuts du centre de contact dans Kustomer",
            ),
            Text::KustomerStatusColumn => (
                "Kustomer status",
                "Statut Kustomer",
            ),
            Text::CcaiStatusColumn => (
                "Contact-center status",
                "Statut du centre de contact",
            ),
            Text::IgnoredStatus => (
                "Ignored",
                "Ignoré",
            ),
            Text::Save => (
                "Save",
                "Enregistrer",
            ),
            Text::Saved => (
                "Saved.",
                "Enregistré.",
            ),
            Text::KustomerStatusesUnavailable => (
                "Kustomer’s statuses could not be read from the host.",
                "Les statuts Kustomer n’ont pas pu être lus depuis l’hôte.",
            ),
            Text::OtherBrowser => (
                "You also have the adapter open in another browser: your status syncs from only one of them. Sign out of the one you do not use.",
                "L’adaptateur est aussi ouvert dans un autre navigateur : votre statut n’est synchronisé que depuis l’un d’eux. Déconnectez-vous de celui que vous n’utilisez pas.",
            ),
            Text::HostNotAllowed => (
                "This page is not an allowed Kustomer address, so the adapter does not talk to it. Ask your administrator to add it to the allowed Kustomer origins.",
                "Cette page n’est pas une adresse Kustomer autorisée : l’adaptateur ne communique pas avec elle. Demandez à votre administrateur de l’ajouter aux origines Kustomer autorisées.",
            ),
            Text::TooManyStreams => (
                "Too many adapter windows are open for you (or on this network): live updates are paused here. Close the tabs you do not use; this one tries again in a minute.",
                "Trop de fenêtres de l’adaptateur sont ouvertes pour vous (ou sur ce réseau) : les mises à jour en direct sont suspendues ici. Fermez les onglets inutiles ; celui-ci réessaie dans une minute.",
            ),
        };
        match lang {
            Lang::En => en,
            Lang::Fr => fr,
        }
    }
}

/// "Gateway unreachable, retrying (attempt n)".
pub fn offline_retrying(lang: Lang, attempt: u32) -> String {
    match lang {
        Lang::En => format!("Gateway unreachable, retrying (attempt {attempt})"),
        Lang::Fr => format!("Passerelle injoignable, nouvel essai (tentative {attempt})"),
    }
}

/// "Will dial +14155552671 ext. 12".
pub fn will_dial(lang: Lang, number: &DialNumber) -> String {
    match (lang, &number.extension) {
        (Lang::En, None) => format!("Will dial {}", number.e164),
        (Lang::En, Some(ext)) => format!("Will dial {} ext. {ext}", number.e164),
        (Lang::Fr, None) => format!("Numéro composé : {}", number.e164),
        (Lang::Fr, Some(ext)) => format!("Numéro composé : {} poste {ext}", number.e164),
    }
}

/// The seed rule: the contact-center account must be the Kustomer user's.
pub fn email_mismatch(lang: Lang, kustomer_email: &str) -> String {
    match lang {
        Lang::En => format!(
            "You are signed in to Kustomer as {kustomer_email}. Sign in to the contact center with the same email address, so that your status and calls follow you."
        ),
        Lang::Fr => format!(
            "Vous êtes connecté à Kustomer en tant que {kustomer_email}. Connectez-vous au centre de contact avec la même adresse e-mail, pour que votre statut et vos appels vous suivent."
        ),
    }
}

/// "Calling +14155552671" once the platform accepted a call.
pub fn calling(lang: Lang, number: &str) -> String {
    match lang {
        Lang::En => format!("Calling {number}"),
        Lang::Fr => format!("Appel vers {number}"),
    }
}

/// "Status: Break" once a status change is done.
pub fn status_set(lang: Lang, name: &str) -> String {
    match lang {
        Lang::En => format!("Status: {name}"),
        Lang::Fr => format!("Statut : {name}"),
    }
}

/// What became of a Kustomer status change; `None` when there is nothing worth saying.
pub fn kustomer_outcome(lang: Lang, name: &str, what: &str) -> Option<String> {
    let fr = lang == Lang::Fr;
    Some(match what {
        "applied" if fr => format!("Statut Kustomer {name} : statut du centre de contact mis à jour."),
        "applied" => format!("Kustomer status {name}: contact-center status updated."),
        "next" if fr => format!("Statut Kustomer {name} : appliqué après l’appel."),
        "next" => format!("Kustomer status {name}: will apply after the call."),
        "unmapped" if fr => format!("Le statut Kustomer {name} n’est associé à aucun statut du centre de contact : rien n’a changé."),
        "unmapped" => format!("Kustomer status {name} is not mapped to a contact-center status: nothing changed."),
        "offline" if fr => format!("Statut Kustomer {name} : non appliqué tant que vous êtes hors ligne dans le centre de contact."),
        "offline" => format!("Kustomer status {name}: not applied while you are Offline in the contact center."),
        "older_than_agents_change" if fr => format!("Statut Kustomer {name} : non appliqué, votre changement plus récent dans l’adaptateur l’emporte."),
        "older_than_agents_change" => format!("Kustomer status {name}: not applied, your later change in the adapter wins."),
        "agents_next_is_later" if fr => format!("Statut Kustomer {name} : votre statut suivant, choisi plus tard, est conservé."),
        "agents_next_is_later" => format!("Kustomer status {name}: your next status, chosen later, stays."),
        _ => return None,
    })
}

/// "For Ada Lovelace": whom the number in the dial pad belongs to.
pub fn dialling_for(lang: Lang, name: &str) -> String {
    match lang {
        Lang::En => format!("For {name}"),
        Lang::Fr => format!("Pour {name}"),
    }
}

/// Why a number cannot be dialled, in words for the agent.
pub fn phone_error(lang: Lang, error: &PhoneError) -> String {
    let fr = lang == Lang::Fr;
    match error {
        PhoneError::Empty if fr => "Saisissez un numéro.".into(),
        PhoneError::Empty => "Enter a number.".into(),
        PhoneError::InputTooLong if fr => "C’est trop long pour un numéro de téléphone.".into(),
        PhoneError::InputTooLong => "This is too long to be a phone number.".into(),
        PhoneError::InvalidCharacter(c) if fr => {
            format!("« {c} » ne peut pas faire partie d’un numéro de téléphone.")
        }
        PhoneError::InvalidCharacter(c) => format!("“{c}” cannot be part of a phone number."),
        PhoneError::ToneKey(c) if fr => {
            format!("« {c} » ne peut être envoyé que pendant un appel.")
        }
        PhoneError::ToneKey(c) => format!("“{c}” can only be sent during a call."),
        PhoneError::MisplacedPlus if fr => "« + » ne peut figurer qu’au début du numéro.".into(),
        PhoneError::MisplacedPlus => "“+” can only start the number.".into(),
        PhoneError::UnknownCountryCode(d) if fr => {
            format!("Aucun indicatif pays ne commence par +{d}.")
        }
        PhoneError::UnknownCountryCode(d) => format!("No country code starts with +{d}."),
        PhoneError::TooShort { country, min } if fr => {
            format!("Trop court pour {country} : au moins {min} chiffres après l’indicatif.")
        }
        PhoneError::TooShort { country, min } => {
            format!("Too short for {country}: at least {min} digits after the country code.")
        }
        PhoneError::TooLong { country, max } if fr => {
            format!("Trop long pour {country} : au plus {max} chiffres après l’indicatif.")
        }
        PhoneError::TooLong { country, max } => {
            format!("Too long for {country}: at most {max} digits after the country code.")
        }
        PhoneError::InvalidExtension if fr => "Le poste doit compter de 1 à 10 chiffres.".into(),
        PhoneError::InvalidExtension => "The extension must be 1 to 10 digits.".into(),
        PhoneError::NotInPlan { country, .. } if fr => {
            format!("Ce n’est pas un numéro valide pour {country}.")
        }
        PhoneError::NotInPlan { country, .. } => format!("Not a valid {country} number."),
        _ if fr => "Ce numéro ne peut pas être composé.".into(),
        _ => "This number cannot be dialled.".into(),
    }
}

/// A refusal of the gateway (its error `code`) in `lang`; a code the widget does not know, or
/// one whose detail only the gateway's sentence has, falls back to `server_message`.
pub fn refusal(lang: Lang, code: &str, server_message: &str) -> String {
    match refusal_text(code) {
        Some((en, fr)) => (if lang == Lang::Fr { fr } else { en }).to_owned(),
        None => server_message.to_owned(),
    }
}

/// Every error code of the gateway's agent API the widget words itself, in English and French.
pub const REFUSAL_CODES: [&str; 33] = [
    "admins_only",
    "agent_not_available",
    "bad_credentials",
    "bad_request",
    "body_too_large",
    "ccai_unavailable",
    "control_not_offered",
    "control_refused",
    "email_mismatch",
    "http_error",
    "invalid_digits",
    "invalid_email",
    "invalid_fields",
    "invalid_number",
    "invalid_status",
    "invalid_target",
    "kustomer_unavailable",
    "malformed_json",
    "mapping_stale",
    "no_next_status",
    "not_admin",
    "not_found",
    "not_json",
    "session_expired",
    "status_not_selectable",
    "store_unavailable",
    "superseded",
    "too_many_statuses",
    "unauthenticated",
    "unknown_agent",
    "unknown_call",
    "unknown_control",
    "unknown_dead_letter",
];

fn refusal_text(code: &str) -> Option<(&'static str, &'static str)> {
    Some(match code {
        "admins_only" | "not_admin" => (
            "Only the adapter’s administrators can do this.",
            "Seuls les administrateurs de l’adaptateur peuvent faire cela.",
        ),
        "agent_not_available" => (
            "You are not Available in the contact center: set your status to Available to place a call.",
            "Vous n’êtes pas Disponible dans le centre de contact : passez au statut Disponible pour appeler.",
        ),
        "bad_credentials" => ("Wrong email or password.", "E-mail ou mot de passe incorrect."),
        "bad_request" | "malformed_json" | "not_json" | "invalid_fields" | "body_too_large" => (
            "The gateway could not read this request; reload the adapter and try again.",
            "La passerelle n’a pas pu lire cette demande ; rechargez l’adaptateur et réessayez.",
        ),
        "ccai_unavailable" => (
            "The contact center cannot be reached; try again in a moment.",
            "Le centre de contact est injoignable ; réessayez dans un instant.",
        ),
        "control_not_offered" => (
            "The contact center does not offer this control to the adapter; use the softphone.",
            "Le centre de contact ne propose pas cette commande à l’adaptateur ; utilisez le softphone.",
        ),
        "control_refused" => (
            "The contact center refused this control for the call as it is now.",
            "Le centre de contact a refusé cette commande dans l’état actuel de l’appel.",
        ),
        "email_mismatch" => (
            "Sign in to the contact center with the email address you use in Kustomer, so that your status and calls follow you.",
            "Connectez-vous au centre de contact avec l’adresse e-mail que vous utilisez dans Kustomer, pour que votre statut et vos appels vous suivent.",
        ),
        "http_error" => (
            "The gateway answered with an error; try again in a moment.",
            "La passerelle a répondu par une erreur ; réessayez dans un instant.",
        ),
        "invalid_digits" => (
            "Send 1 to 32 keys: 0-9, * and #.",
            "Envoyez de 1 à 32 touches : 0-9, * et #.",
        ),
        "invalid_email" => (
            "Enter the email address you use for the contact center.",
            "Saisissez l’adresse e-mail que vous utilisez pour le centre de contact.",
        ),
        "invalid_number" => (
            "The contact center cannot dial this number; check it in the dial pad.",
            "Le centre de contact ne peut pas composer ce numéro ; vérifiez-le dans le pavé.",
        ),
        "invalid_status" | "status_not_selectable" => (
            "This status cannot be chosen.",
            "Ce statut ne peut pas être choisi.",
        ),
        "invalid_target" => (
            "Say where to transfer the call (at most 100 characters).",
            "Indiquez vers où transférer l’appel (100 caractères au plus).",
        ),
        "kustomer_unavailable" => (
            "Kustomer cannot be reached; try again in a moment.",
            "Kustomer est injoignable ; réessayez dans un instant.",
        ),
        "mapping_stale" => (
            "The status this Kustomer status is mapped to no longer exists in the contact center; ask your administrator to update the mapping.",
            "Le statut associé à ce statut Kustomer n’existe plus dans le centre de contact ; demandez à votre administrateur de mettre à jour l’association.",
        ),
        "no_next_status" => (
            "There is no next status to cancel.",
            "Il n’y a pas de statut suivant à annuler.",
        ),
        "not_found" => (
            "The gateway does not offer this action; it may be older than the adapter.",
            "La passerelle ne propose pas cette action ; elle est peut-être plus ancienne que l’adaptateur.",
        ),
        "session_expired" | "unauthenticated" => (
            "Your session has ended; sign in again.",
            "Votre session a pris fin ; reconnectez-vous.",
        ),
        "store_unavailable" => (
            "The gateway cannot reach its database; try again in a moment.",
            "La passerelle ne peut pas joindre sa base de données ; réessayez dans un instant.",
        ),
        "superseded" => (
            "Your Kustomer status changed after you picked this one, and the latest change wins: your status follows Kustomer.",
            "Votre statut Kustomer a changé après votre choix, et le dernier changement l’emporte : votre statut suit Kustomer.",
        ),
        "too_many_statuses" => (
            "At most 200 Kustomer statuses can be mapped.",
            "200 statuts Kustomer au plus peuvent être associés.",
        ),
        "unknown_agent" => (
            "The contact center does not know your email address; ask your administrator.",
            "Le centre de contact ne connaît pas votre adresse e-mail ; demandez à votre administrateur.",
        ),
        "unknown_call" => (
            "This is not your current or last call.",
            "Ce n’est ni votre appel en cours ni votre dernier appel.",
        ),
        "unknown_control" => ("No such call control.", "Cette commande d’appel n’existe pas."),
        "unknown_dead_letter" => (
            "No failed operation has this number (it may have been retried already).",
            "Aucune opération en échec ne porte ce numéro (elle a peut-être déjà été relancée).",
        ),
        _ => return None,
    })
}

thread_local! {
    /// The language in force, for code that runs outside the reactive system (the crash panel).
    static CURRENT: Cell<Option<Lang>> = const { Cell::new(None) };
}

/// The language in force, or the browser's when the app has not chosen one yet.
pub fn current_lang() -> Lang {
    CURRENT.with(Cell::get).unwrap_or_else(browser_lang)
}

/// The browser's preferred supported language (`navigator.languages`).
pub fn browser_lang() -> Lang {
    let Some(window) = web_sys::window() else {
        return Lang::default();
    };
    let tags: Vec<String> = window
        .navigator()
        .languages()
        .iter()
        .filter_map(|tag| tag.as_string())
        .collect();
    Lang::negotiate(tags.iter().map(String::as_str))
}

/// The reactive language, shared through context.
#[derive(Clone, Copy, Debug)]
pub struct I18n {
    pub lang: RwSignal<Lang>,
}

impl I18n {
    /// The wording of `text` in the current language; reactive when read inside a closure.
    pub fn t(&self, text: Text) -> &'static str {
        text.in_lang(self.lang.get())
    }

    /// The wording of `text` as a signal, for views: one type for every text, so the views
    /// share one rendering path instead of one per closure.
    pub fn text(&self, text: Text) -> Signal<&'static str> {
        let lang = self.lang;
        Signal::derive(move || text.in_lang(lang.get()))
    }
}

/// Provides the translation context, starting from the browser's language, and keeps
/// `<html lang>` in step with it.
pub fn provide_i18n() -> I18n {
    let i18n = I18n {
        lang: RwSignal::new(browser_lang()),
    };
    provide_context(i18n);
    effect(move || {
        let lang = i18n.lang.get();
        CURRENT.with(|current| current.set(Some(lang)));
        if let Some(root) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element())
        {
            let _ = root.set_attribute("lang", lang.tag());
        }
    });
    i18n
}

/// The translation context, or a fresh one when none was provided.
pub fn use_i18n() -> I18n {
    use_context::<I18n>().unwrap_or_else(provide_i18n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_has_both_languages() {
        for text in Text::ALL {
            for lang in Lang::ALL {
                let wording = text.in_lang(lang);
                assert!(!wording.trim().is_empty(), "{text:?} in {lang:?} is empty");
            }
        }
    }

    #[test]
    fn french_is_translated_not_copied() {
        let untranslated: Vec<_> = Text::ALL
            .into_iter()
            .filter(|t| *t != Text::AppName && t.in_lang(Lang::En) == t.in_lang(Lang::Fr))
            .collect();
        assert!(untranslated.is_empty(), "not translated: {untranslated:?}");
    }

    #[test]
    fn all_lists_every_variant_once() {
        let seen: std::collections::HashSet<_> = Text::ALL.into_iter().collect();
        assert_eq!(seen.len(), Text::ALL.len());
    }

    #[test]
    fn phone_errors_are_explained_in_both_languages() {
        let errors = [
            PhoneError::Empty,
            PhoneError::InputTooLong,
            PhoneError::InvalidCharacter('a'),
            PhoneError::ToneKey('#'),
            PhoneError::MisplacedPlus,
            PhoneError::UnknownCountryCode("999".into()),
            PhoneError::TooShort {
                country: "FR".into(),
                min: 9,
            },
            PhoneError::TooLong {
                country: "FR".into(),
                max: 9,
            },
            PhoneError::InvalidExtension,
            PhoneError::NotInPlan {
                country: "US".into(),
                rule: "r",
            },
        ];
        for error in errors {
            let (en, fr) = (phone_error(Lang::En, &error), phone_error(Lang::Fr, &error));
            assert!(!en.is_empty() && !fr.is_empty() && en != fr, "{error:?}");
        }
        assert_eq!(
            phone_error(
                Lang::En,
                &PhoneError::TooShort {
                    country: "FR".into(),
                    min: 9
                }
            ),
            "Too short for FR: at least 9 digits after the country code."
        );
    }

    #[test]
    fn every_known_refusal_is_worded_and_unknown_ones_keep_the_servers_sentence() {
        for code in REFUSAL_CODES {
            let en = refusal(Lang::En, code, "server");
            let fr = refusal(Lang::Fr, code, "server");
            assert_ne!(en, "server", "{code}");
            assert_ne!(en, fr, "{code} is translated");
        }
        assert_eq!(
            refusal(Lang::Fr, "brand_new_code", "The gateway's sentence."),
            "The gateway's sentence."
        );
    }

    #[test]
    fn parameterised_texts() {
        let number = DialNumber {
            e164: "+14155552671".into(),
            extension: Some("12".into()),
        };
        assert_eq!(
            will_dial(Lang::En, &number),
            "Will dial +14155552671 ext. 12"
        );
        assert_eq!(
            will_dial(Lang::Fr, &number),
            "Numéro composé : +14155552671 poste 12"
        );
        assert_eq!(dialling_for(Lang::Fr, "Ada"), "Pour Ada");
        assert_eq!(
            offline_retrying(Lang::En, 3),
            "Gateway unreachable, retrying (attempt 3)"
        );
        assert_eq!(
            offline_retrying(Lang::Fr, 1),
            "Passerelle injoignable, nouvel essai (tentative 1)"
        );
    }
}
