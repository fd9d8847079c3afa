//! Why a webhook was refused before anything was stored: the `error` codes of the `401`
//! answers, the rejections log's `reason` and the `reason` label of the rejection metric.

/// A refusal's kind; its [`code`](Reason::code) is the contract's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A signature (or one of the headers it needs) is not there.
    SignatureMissing,
    /// A signature is there and matches none of the source's secrets (or cannot be read).
    SignatureInvalid,
    /// The signed timestamp is further from this host's clock than `tolerance_s`.
    TimestampOutOfTolerance,
    /// The source's ingest token is missing or wrong.
    TokenInvalid,
}

impl Reason {
    pub const ALL: [Reason; 4] = [
        Reason::SignatureMissing,
        Reason::SignatureInvalid,
        Reason::TimestampOutOfTolerance,
        Reason::TokenInvalid,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Reason::SignatureMissing => "signature_missing",
            Reason::SignatureInvalid => "signature_invalid",
            Reason::TimestampOutOfTolerance => "timestamp_out_of_tolerance",
            Reason::TokenInvalid => "token_invalid",
        }
    }

    pub fn parse(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }
}

/// A refusal with the message that tells the operator (and the sender) what to check. It
/// never carries a secret or the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub reason: Reason,
    pub message: String,
}

impl Refused {
    pub fn new(reason: Reason, message: impl Into<String>) -> Refused {
        Refused {
            reason,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counters are indexed by `reason as usize` and labelled through `ALL`: the two orders
    /// must agree, and every code must read back.
    #[test]
    fn all_lists_the_reasons_in_declaration_order() {
        for (i, r) in Reason::ALL.into_iter().enumerate() {
            assert_eq!(r as usize, i);
            assert_eq!(Reason::parse(r.code()), Some(r));
        }
    }
}
