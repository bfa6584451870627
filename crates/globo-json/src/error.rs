//! The one error type of globo-json.

/// Why a document could not be read. Positions are 1-based lines and columns counted in
/// characters (code points), as Python reports them; no message contains any of the content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The bytes are not text in the encoding Python's `json.detect_encoding` picks for them
    /// (UTF-8, or UTF-16/UTF-32 recognised by a byte-order mark or by zero bytes).
    #[error("not valid {encoding} text at byte {offset}")]
    Encoding {
        /// The encoding detected, as Python names it (`utf-8`, `utf-16-le`, ...).
        encoding: &'static str,
        /// The byte offset of the first undecodable unit.
        offset: usize,
    },

    /// The text is not JSON as Python's decoder reads it.
    #[error("{what} at line {line}, column {column}")]
    Syntax {
        /// What was expected or found, in Python's words (`expecting value`, `extra data`, ...).
        what: &'static str,
        /// Line of the offending character.
        line: usize,
        /// Column of the offending character.
        column: usize,
    },

    /// The document ends in the middle of a value.
    #[error("unexpected end of data at line {line}, column {column}")]
    Eof {
        /// Line where the data ends.
        line: usize,
        /// Column where the data ends.
        column: usize,
    },

    /// Arrays and objects are nested deeper than [`MAX_DEPTH`](crate::MAX_DEPTH).
    #[error("nested deeper than {limit} levels at line {line}, column {column}")]
    TooDeep {
        /// The limit.
        limit: usize,
        /// Line of the array or object that goes too deep.
        line: usize,
        /// Column of that array or object.
        column: usize,
    },

    /// An integer has more digits than Python converts (`sys.get_int_max_str_digits()`,
    /// 4,300 by default): Python refuses the document with a `ValueError`.
    #[error("integer with more than {limit} digits at line {line}, column {column}")]
    IntegerTooLong {
        /// The limit.
        limit: usize,
        /// Line of the integer.
        line: usize,
        /// Column of the integer.
        column: usize,
    },
}
