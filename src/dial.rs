//! The dial pad's state, with no browser in it: what is typed, who it is for, and the exact
//! number that will be dialled.

use adapter_core::{
    host_protocol::{ClickToCall, CustomerRef},
    phone::{self, Country, DialNumber, PhoneError},
};

/// Longest text the dial pad holds.
pub const MAX_CHARS: usize = phone::MAX_INPUT_CHARS;

/// What the dial pad holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DialPad {
    text: String,
    /// Who the number belongs to, when the CRM said so (click-to-call).
    pub customer: Option<CustomerRef>,
    /// The Kustomer conversation the call belongs to, when known.
    pub conversation_id: Option<String>,
}

/// Whether a character may be typed or pasted into the dial pad. Letters are kept out except
/// those of an extension marker, so "ext. 12" and "poste 12" can be pasted.
fn allowed(c: char) -> bool {
    c.is_ascii_digit() || " +*#-.()/,;=xXeEtTpPoOsS".contains(c)
}

impl DialPad {
    pub fn text(&self) -> &str {
        &self.text
    }

    /// One key of the pad (or the keyboard). Typing by hand means the number no longer
    /// necessarily belongs to the customer the CRM named, so that name is dropped.
    pub fn press(&mut self, key: char) {
        if allowed(key) && self.text.chars().count() < MAX_CHARS {
            self.text.push(key);
            self.customer = None;
            self.conversation_id = None;
        }
    }

    /// Pasted text: characters that cannot be part of a number are left out.
    pub fn paste(&mut self, pasted: &str) {
        for key in pasted.chars().filter(|c| !c.is_control()) {
            if allowed(key) {
                self.press(key);
            }
        }
    }

    /// Replaces the text (the input field's value after the agent edited it).
    pub fn set_text(&mut self, text: &str) {
        self.text.clear();
        self.paste(text);
    }

    pub fn backspace(&mut self) {
        self.text.pop();
        self.customer = None;
        self.conversation_id = None;
    }

    pub fn clear(&mut self) {
        *self = DialPad::default();
    }

    /// Click-to-call: the CRM's number as written (so that when it is not a number the agent
    /// sees why), with its customer and conversation. The agent still has to click Call.
    pub fn fill(&mut self, request: &ClickToCall) {
        self.fill_number(&request.phone, request.customer.clone());
        self.conversation_id = request.conversation_id.clone();
    }

    /// One of the current customer's numbers, as written in the CRM.
    pub fn fill_number(&mut self, number: &str, customer: Option<CustomerRef>) {
        self.clear();
        self.text = number
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_CHARS)
            .collect();
        self.customer = customer;
    }

    /// The exact number that will be dialled, or why there is none. `None` while empty.
    pub fn preview(&self, default_country: &Country) -> Option<Result<DialNumber, PhoneError>> {
        if self.text.trim().is_empty() {
            None
        } else {
            Some(phone::normalise(&self.text, default_country))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> &'static Country {
        crate::page::country_or_fallback(Some("US"))
    }

    #[test]
    fn keys_build_a_number_and_backspace_and_clear_undo_it() {
        let mut pad = DialPad::default();
        for key in "4155552671".chars() {
            pad.press(key);
        }
        assert!(matches!(pad.preview(us()), Some(Ok(ref n)) if n.e164 == "+14155552671"));
        pad.backspace();
        assert_eq!(pad.text(), "415555267");
        assert!(matches!(pad.preview(us()), Some(Err(_))));
        pad.clear();
        assert_eq!(pad.preview(us()), None);
    }

    #[test]
    fn letters_and_controls_are_kept_out_and_length_is_bounded() {
        let mut pad = DialPad::default();
        pad.paste("Tel: +1 (415) 555-2671\n<b>");
        assert_eq!(
            pad.text(),
            "Te +1 (415) 555-2671",
            "only letters of extension markers pass"
        );
        assert!(
            matches!(pad.preview(us()), Some(Err(_))),
            "and the preview says what is wrong"
        );
        pad.set_text(&"9".repeat(500));
        assert_eq!(pad.text().len(), MAX_CHARS);
    }

    #[test]
    fn click_to_call_fills_with_the_customer_and_typing_forgets_it() {
        let mut pad = DialPad::default();
        pad.fill(&ClickToCall {
            phone: "(415) 555-2671 ext. 12".into(),
            customer: Some(CustomerRef {
                id: "c1".into(),
                name: Some("Ada".into()),
            }),
            conversation_id: Some("k1".into()),
        });
        let Some(Ok(number)) = pad.preview(us()) else {
            panic!("no valid number in the pad")
        };
        assert_eq!(
            (number.e164.as_str(), number.extension.as_deref()),
            ("+14155552671", Some("12"))
        );
        assert_eq!(
            pad.customer.as_ref().and_then(|c| c.name.as_deref()),
            Some("Ada")
        );
        assert_eq!(pad.conversation_id.as_deref(), Some("k1"));
        pad.press('3');
        assert_eq!(pad.customer, None);
        assert_eq!(pad.conversation_id, None);
    }

    #[test]
    fn a_crm_number_is_shown_as_written_so_its_fault_can_be_explained() {
        let mut pad = DialPad::default();
        pad.fill(&ClickToCall {
            phone: "555-01AB\u{7}".into(),
            customer: None,
            conversation_id: None,
        });
        assert_eq!(pad.text(), "555-01AB");
        assert_eq!(
            pad.preview(us()),
            Some(Err(PhoneError::InvalidCharacter('A')))
        );
    }
}
