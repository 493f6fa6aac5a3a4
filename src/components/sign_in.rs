use adapter_core::host_protocol::KustomerUser;
use leptos::prelude::*;

use crate::{
    agent::Agent,
    components::write_input,
    effects::effect,
    i18n::{email_mismatch, refusal, use_i18n, Text},
};

fn same_email(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// Sign-in to the contact center. The account must be the Kustomer user's (same email): the
/// form says so before asking the gateway, which checks it again.
#[component]
pub fn SignIn(
    agent: Agent,
    /// The Kustomer user the host says is signed in; `None` until it says.
    #[prop(into)]
    user: Signal<Option<KustomerUser>>,
    /// The adapter runs outside Kustomer: nobody to match, no sign-in.
    #[prop(into)]
    standalone: Signal<bool>,
) -> impl IntoView {
    let i18n = use_i18n();
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let pending = RwSignal::new(false);
    // The Kustomer user's email is the only right answer: offer it.
    effect(move || {
        if let Some(user) = user.get() {
            if email.get_untracked().is_empty() {
                email.set(user.email);
            }
        }
    });
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let Some(user) = user.get_untracked() else {
            return;
        };
        let typed = email.get_untracked();
        if !same_email(&typed, &user.email) {
            error.set(Some(email_mismatch(i18n.lang.get_untracked(), &user.email)));
            return;
        }
        error.set(None);
        pending.set(true);
        let secret = password.get_untracked();
        leptos::task::spawn_local(async move {
            let result = agent.sign_in(typed, secret, user).await;
            let _ = pending.try_set(false);
            if let Err(failure) = result {
                let lang = i18n.lang.get_untracked();
                let _ = error.try_set(Some(refusal(lang, &failure.code, &failure.message)));
            } else {
                let _ = password.try_set(String::new());
            }
        });
    };
    let blocked = move || {
        if standalone.get() {
            Some(i18n.t(Text::SignInNeedsKustomer))
        } else if user.with(Option::is_none) {
            Some(i18n.t(Text::WaitingForKustomer))
        } else {
            None
        }
    };
    view! {
        <form class="sign-in" on:submit=submit aria-labelledby="sign-in-title">
            <h2 id="sign-in-title" class="section-title">{i18n.text(Text::SignInTitle)}</h2>
            <p class="sign-in-blocked" hidden=Signal::derive(move || blocked().is_none())>{blocked}</p>
            <label class="field">
                <span>{i18n.text(Text::Email)}</span>
                <input
                    name="email"
                    type="email"
                    autocomplete="username"
                    required
                    prop:value=move || email.get()
                    on:input=write_input(email)
                />
            </label>
            <label class="field">
                <span>{i18n.text(Text::Password)}</span>
                <input
                    name="password"
                    type="password"
                    autocomplete="current-password"
                    prop:value=move || password.get()
                    on:input=write_input(password)
                />
            </label>
            <p class="form-error" role="alert" hidden=Signal::derive(move || error.with(Option::is_none))>
                {move || error.get()}
            </p>
            <button type="submit" class="button primary" disabled=Signal::derive(move || pending.get() || blocked().is_some())>
                {Signal::derive(move || i18n.t(if pending.get() { Text::SigningIn } else { Text::SignIn }))}
            </button>
        </form>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn emails_match_whatever_their_case_and_spacing() {
        assert!(super::same_email(" Ada@Example.com ", "ada@example.com"));
        assert!(!super::same_email("ada@example.com", "ada@example.org"));
    }
}
