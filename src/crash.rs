//! A panic must never leave the agent with a white frame. The panic hook logs to the console (the
//! message and the stack) and draws a plain-DOM panel over the widget (the reactive system may be
//! unusable by then), in the agent's language, with a reload link that keeps the frame's query
//! (`parentUrl`, `id`).

use wasm_bindgen::JsValue;

use crate::i18n::{current_lang, Text};

/// Id of the panel's root element.
pub const PANEL_ID: &str = "adapter-crash";

/// Installs the panic hook. Call first in `main`.
pub fn install() {
    std::panic::set_hook(Box::new(|info| {
        let details = info.to_string();
        // As an Error, so the console shows the message with the stack where it panicked.
        web_sys::console::error_1(&js_sys::Error::new(&details));
        if let Err(error) = show_panel(&details) {
            web_sys::console::error_2(&JsValue::from_str("cannot show the crash panel"), &error);
        }
    }));
}

/// Draws the crash panel with `details` (replacing an earlier one).
pub fn show_panel(details: &str) -> Result<(), JsValue> {
    let window = web_sys::window().ok_or_else(|| JsValue::from_str("no window"))?;
    let document = window
        .document()
        .ok_or_else(|| JsValue::from_str("no document"))?;
    let body = document
        .body()
        .ok_or_else(|| JsValue::from_str("no body"))?;
    if let Some(old) = document.get_element_by_id(PANEL_ID) {
        old.remove();
    }
    let lang = current_lang();
    // Creates <tag class=..>text</tag> under `parent`.
    let add = |parent: &web_sys::Element,
               tag: &str,
               class: &str,
               text: Option<&str>|
     -> Result<web_sys::Element, JsValue> {
        let el = document.create_element(tag)?;
        el.set_class_name(class);
        if let Some(text) = text {
            el.set_text_content(Some(text));
        }
        parent.append_child(&el)?;
        Ok(el)
    };

    let panel = add(&body, "section", "crash-panel", None)?;
    panel.set_id(PANEL_ID);
    panel.set_attribute("role", "alert")?;
    add(
        &panel,
        "h1",
        "crash-title",
        Some(Text::CrashTitle.in_lang(lang)),
    )?;
    add(
        &panel,
        "p",
        "crash-help",
        Some(Text::CrashHelp.in_lang(lang)),
    )?;
    let reload = add(
        &panel,
        "a",
        "button crash-reload",
        Some(Text::Reload.in_lang(lang)),
    )?;
    reload.set_attribute("href", &window.location().href()?)?;
    let more = add(&panel, "details", "crash-details", None)?;
    add(&more, "summary", "", Some(Text::CrashDetails.in_lang(lang)))?;
    add(&more, "pre", "", Some(details))?;
    Ok(())
}
