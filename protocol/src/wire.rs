//! Encoding helpers and BLE fragmentation / reassembly.
//!
//! Every multi-byte integer in the protocol is big-endian.
//!
//! ## Fragment format
//!
//! A message is split into ATT writes (phone → lock) or notifications (lock → phone)
//! of at most `min(MTU - 3, 512)` bytes. Each fragment starts with a 1-byte header:
//!
//! | bit | meaning |
//! |-----|---------|
//! | 7   | FIRST: first fragment of a message |
//! | 6   | LAST: last fragment of a message |
//! | 5–0 | sequence number: fragment index modulo 64 |
//!
//! The FIRST fragment carries, after the header, the total message length as a
//! big-endian `u16` (1..=[`MAX_MESSAGE_LEN`]). The rest of each fragment is message data;
//! every fragment carries at least one data byte.

use alloc::vec::Vec;

use crate::error::ProtocolError;

/// Largest message (before fragmentation) either role accepts or produces.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Smallest ATT MTU (BLE default).
pub const MIN_ATT_MTU: u16 = 23;
/// Largest ATT MTU (BLE maximum).
pub const MAX_ATT_MTU: u16 = 517;
/// Bytes of ATT overhead per write / notification (opcode + handle).
pub const ATT_OVERHEAD: usize = 3;
/// Largest attribute value (ATT limit).
pub const MAX_ATTRIBUTE_LEN: usize = 512;
/// Fragment header flag: first fragment.
pub const FLAG_FIRST: u8 = 0x80;
/// Fragment header flag: last fragment.
pub const FLAG_LAST: u8 = 0x40;
/// Fragment header mask for the sequence number.
pub const SEQ_MASK: u8 = 0x3f;

/// Maximum fragment size (header included) for an ATT MTU.
pub fn fragment_capacity(att_mtu: u16) -> Result<usize, ProtocolError> {
    if !(MIN_ATT_MTU..=MAX_ATT_MTU).contains(&att_mtu) {
        return Err(ProtocolError::InvalidMtu(att_mtu));
    }
    Ok((att_mtu as usize - ATT_OVERHEAD).min(MAX_ATTRIBUTE_LEN))
}

/// Splits `message` into fragments for the given ATT MTU (23..=517).
pub fn fragment(message: &[u8], att_mtu: u16) -> Result<Vec<Vec<u8>>, ProtocolError> {
    let cap = fragment_capacity(att_mtu)?;
    if message.is_empty() {
        return Err(ProtocolError::EmptyMessage);
    }
    if message.len() > MAX_MESSAGE_LEN {
        return Err(ProtocolError::MessageTooLarge);
    }
    let mut out = Vec::new();
    let first_len = message.len().min(cap - 3);
    let mut frag = Vec::with_capacity(3 + first_len);
    let last = first_len == message.len();
    frag.push(FLAG_FIRST | if last { FLAG_LAST } else { 0 });
    frag.extend_from_slice(&(message.len() as u16).to_be_bytes());
    frag.extend_from_slice(&message[..first_len]);
    out.push(frag);
    let mut seq: u8 = 1;
    let mut rest = &message[first_len..];
    while !rest.is_empty() {
        let n = rest.len().min(cap - 1);
        let last = n == rest.len();
        let mut frag = Vec::with_capacity(1 + n);
        frag.push((seq & SEQ_MASK) | if last { FLAG_LAST } else { 0 });
        frag.extend_from_slice(&rest[..n]);
        out.push(frag);
        rest = &rest[n..];
        seq = seq.wrapping_add(1) & SEQ_MASK;
    }
    Ok(out)
}

/// Reassembles fragments produced by [`fragment`], with a buffer bounded by
/// [`MAX_MESSAGE_LEN`]. Any error resets it; the next message must start with a
/// FIRST fragment.
#[derive(Debug, Default, Clone)]
pub struct Reassembler {
    buf: Vec<u8>,
    expected: usize,
    next_seq: u8,
    active: bool,
}

impl Reassembler {
    /// A reassembler waiting for a FIRST fragment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops any partially reassembled message.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.expected = 0;
        self.next_seq = 0;
        self.active = false;
    }

    /// Whether part of a message has been received.
    pub fn in_progress(&self) -> bool {
        self.active
    }

    /// Feeds one fragment. Returns `Ok(Some(message))` when a message is complete.
    pub fn push(&mut self, fragment: &[u8]) -> Result<Option<Vec<u8>>, ProtocolError> {
        let r = self.push_inner(fragment);
        if r.is_err() {
            self.reset();
        }
        r
    }

    fn push_inner(&mut self, fragment: &[u8]) -> Result<Option<Vec<u8>>, ProtocolError> {
        let (&hdr, rest) = fragment.split_first().ok_or(ProtocolError::BadFragment)?;
        if fragment.len() > MAX_ATTRIBUTE_LEN {
            return Err(ProtocolError::BadFragment);
        }
        let seq = hdr & SEQ_MASK;
        let data = if hdr & FLAG_FIRST != 0 {
            if self.active {
                return Err(ProtocolError::FragmentOutOfOrder);
            }
            if seq != 0 || rest.len() < 2 {
                return Err(ProtocolError::BadFragment);
            }
            let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
            if len == 0 {
                return Err(ProtocolError::BadFragment);
            }
            if len > MAX_MESSAGE_LEN {
                return Err(ProtocolError::MessageTooLarge);
            }
            self.buf.clear();
            self.buf.reserve(len);
            self.expected = len;
            self.active = true;
            &rest[2..]
        } else {
            if !self.active || seq != self.next_seq {
                return Err(ProtocolError::FragmentOutOfOrder);
            }
            rest
        };
        if data.is_empty() {
            return Err(ProtocolError::BadFragment);
        }
        if self.buf.len() + data.len() > self.expected {
            return Err(ProtocolError::FragmentLengthMismatch);
        }
        self.buf.extend_from_slice(data);
        self.next_seq = seq.wrapping_add(1) & SEQ_MASK;
        let complete = self.buf.len() == self.expected;
        match (hdr & FLAG_LAST != 0, complete) {
            (true, true) => {
                let msg = core::mem::take(&mut self.buf);
                self.reset();
                Ok(Some(msg))
            }
            (false, false) => Ok(None),
            _ => Err(ProtocolError::FragmentLengthMismatch),
        }
    }
}

/// Append-only big-endian encoder.
#[derive(Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self::default()
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    /// Length-prefixed (`u16`) bytes. Callers guarantee `v.len() <= u16::MAX`
    /// (all messages are bounded by `MAX_MESSAGE_LEN`).
    pub(crate) fn bytes16(&mut self, v: &[u8]) {
        self.u16(v.len() as u16);
        self.bytes(v);
    }
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf
    }
    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

/// Canonical encoding of a signed message: its body followed by the 64-byte signature.
/// Shared by every signed type so the layout is defined once.
pub(crate) fn signed_bytes(mut body: Vec<u8>, signature: &[u8; 64]) -> Vec<u8> {
    body.extend_from_slice(signature);
    body
}

/// Bounds-checked big-endian decoder.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        let end = self.pos.checked_add(n).ok_or(ProtocolError::Truncated)?;
        let s = self.data.get(self.pos..end).ok_or(ProtocolError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.array::<1>()?[0])
    }
    /// Reads the leading format-version byte and rejects any but `expected`; every
    /// versioned encoding starts this way, so the check lives in one place.
    pub(crate) fn version(&mut self, expected: u8) -> Result<(), ProtocolError> {
        match self.u8()? {
            v if v == expected => Ok(()),
            v => Err(ProtocolError::UnsupportedVersion(v)),
        }
    }
    pub(crate) fn u16(&mut self) -> Result<u16, ProtocolError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub(crate) fn i16(&mut self) -> Result<i16, ProtocolError> {
        Ok(i16::from_be_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, ProtocolError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, ProtocolError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn bytes16(&mut self) -> Result<&'a [u8], ProtocolError> {
        let n = self.u16()? as usize;
        self.take(n)
    }
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }
    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = &self.data[self.pos..];
        self.pos = self.data.len();
        s
    }
    pub(crate) fn finish(&self) -> Result<(), ProtocolError> {
        if self.pos == self.data.len() {
            Ok(())
        } else {
            Err(ProtocolError::TrailingBytes)
        }
    }
}
