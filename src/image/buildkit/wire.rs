//! The few protobuf messages a BuildKit session and its progress carry, read and written by hand:
//! a dozen fields do not justify a code generator and its build time. Varints, length-delimited
//! fields and gRPC's five-byte message frame; unknown fields are skipped, as protobuf requires.

use anyhow::{Result, anyhow, bail};

/// One field of a message: its number and its value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Field<'a> {
    Varint(u32, u64),
    Bytes(u32, &'a [u8]),
}

fn varint(buf: &[u8], at: &mut usize) -> Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*at).ok_or_else(|| anyhow!("protobuf: a varint runs past the message"))?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    bail!("protobuf: a varint longer than 10 bytes")
}

/// The fields of `buf`, in order (fixed-size fields skipped: none of ours has one).
pub(crate) fn fields(buf: &[u8]) -> Result<Vec<Field<'_>>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let key = varint(buf, &mut at)?;
        let number = u32::try_from(key >> 3).map_err(|_| anyhow!("protobuf: field number out of range"))?;
        match key & 7 {
            0 => out.push(Field::Varint(number, varint(buf, &mut at)?)),
            2 => {
                let len = usize::try_from(varint(buf, &mut at)?).unwrap_or(usize::MAX);
                let end = at.checked_add(len).filter(|end| *end <= buf.len());
                let end = end.ok_or_else(|| anyhow!("protobuf: a field runs past the message"))?;
                out.push(Field::Bytes(number, &buf[at..end]));
                at = end;
            }
            1 => at += 8,
            5 => at += 4,
            other => bail!("protobuf: wire type {other} is not supported"),
        }
    }
    if at > buf.len() {
        bail!("protobuf: a fixed-size field runs past the message");
    }
    Ok(out)
}

/// The first length-delimited field `number` as text (empty when absent).
pub(crate) fn text(fields: &[Field<'_>], number: u32) -> String {
    all(fields, number).first().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default()
}

/// Every length-delimited field `number`.
pub(crate) fn all<'a>(fields: &[Field<'a>], number: u32) -> Vec<&'a [u8]> {
    fields
        .iter()
        .filter_map(|f| match f {
            Field::Bytes(n, b) if *n == number => Some(*b),
            _ => None,
        })
        .collect()
}

/// The varint field `number` (0 when absent, as protobuf's default).
pub(crate) fn number(fields: &[Field<'_>], number: u32) -> u64 {
    fields
        .iter()
        .find_map(|f| match f {
            Field::Varint(n, v) if *n == number => Some(*v),
            _ => None,
        })
        .unwrap_or_default()
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends length-delimited field `number`.
pub(crate) fn put_bytes(out: &mut Vec<u8>, number: u32, value: &[u8]) {
    put_varint(out, u64::from(number) << 3 | 2);
    put_varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// Appends varint field `number`.
pub(crate) fn put_number(out: &mut Vec<u8>, number: u32, value: u64) {
    put_varint(out, u64::from(number) << 3);
    put_varint(out, value);
}

/// A message in gRPC's frame: not compressed, its length big-endian, the message.
pub(crate) fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(&u32::try_from(message.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The one message of a unary request's body.
pub(crate) fn unframe(body: &[u8]) -> Result<&[u8]> {
    let [compressed, a, b, c, d, rest @ ..] = body else { bail!("gRPC: a request shorter than its frame") };
    if *compressed != 0 {
        bail!("gRPC: a compressed request (none was offered)");
    }
    let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
    rest.get(..len).ok_or_else(|| anyhow!("gRPC: a request shorter than its frame says"))
}

/// A `google.protobuf.Timestamp` in seconds.
pub(crate) fn seconds(timestamp: &[u8]) -> Result<f64> {
    let f = fields(timestamp)?;
    Ok(number(&f, 1) as i64 as f64 + number(&f, 2) as i64 as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_back_what_was_written() {
        let mut m = Vec::new();
        put_bytes(&mut m, 1, b"npm_token");
        put_number(&mut m, 3, 300);
        put_bytes(&mut m, 2, b"");
        let f = fields(&m).unwrap();
        assert_eq!(text(&f, 1), "npm_token");
        assert_eq!(number(&f, 3), 300);
        assert_eq!(all(&f, 2), vec![&b""[..]]);
        assert_eq!(text(&f, 9), "", "absent is protobuf's default");
    }

    #[test]
    fn known_encodings() {
        // From protobuf's encoding guide: field 1 = 150 is 08 96 01; field 2 = "testing".
        assert_eq!(fields(&[0x08, 0x96, 0x01]).unwrap(), vec![Field::Varint(1, 150)]);
        let mut m = Vec::new();
        put_bytes(&mut m, 2, b"testing");
        assert_eq!(m, [0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']);
        // A health check's answer: status SERVING (1).
        let mut serving = Vec::new();
        put_number(&mut serving, 1, 1);
        assert_eq!(serving, [0x08, 0x01]);
    }

    #[test]
    fn truncated_or_unknown_input_is_an_error_not_a_panic() {
        assert!(fields(&[0x12, 0x07, b't']).is_err());
        assert!(fields(&[0x08]).is_err());
        assert!(fields(&[0x0b]).is_err(), "wire type 3 (groups)");
        assert!(fields(&[0x09, 1, 2]).is_err(), "a fixed64 cut short");
        assert!(unframe(&[0, 0, 0, 0, 9, 1]).is_err());
        assert!(unframe(&[1, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn frames_round_trip_and_timestamps_read() {
        assert_eq!(unframe(&frame(b"abc")).unwrap(), b"abc");
        let mut ts = Vec::new();
        put_number(&mut ts, 1, 12);
        put_number(&mut ts, 2, 500_000_000);
        assert_eq!(seconds(&ts).unwrap(), 12.5);
    }
}
