//! Transparent compression: zstd by default, gzip for compatibility.
//!
//! - Chosen per store ([`CompressStore::new`], config `compression` / `compression_level`) or
//!   per put (`PutOptions::layer_hints`: `compression` = `none` | `zstd` | `gzip`, and
//!   optionally `compression_level`). A per-put choice is followed as given.
//! - Skipped for content types that are already compressed ([`is_precompressed`]), and for
//!   whole puts whose first 128 KiB (or whole body) compresses to more than 90% of its size.
//!   Streamed (multipart) uploads fix their metadata before the first byte, so they skip only
//!   by content type; zstd stores incompressible blocks raw, so the cost stays small.
//! - Recorded as `cairn-compression` = `zstd` | `gzip` and `cairn-size` = the logical size
//!   (for streamed uploads `cairn-size` is trailing metadata, kept in the checksum manifest).
//!   zstd frames carry their content checksum and gzip its CRC-32, so a decompressed body is
//!   checked end to end even above the checksum layer.
//! - Reads decompress as the body streams, in bounded memory (output is produced in 256 KiB
//!   chunks however well the input compressed), and hold back the last chunk until the
//!   stream is known to be complete. `head` and `get` report the logical size.
//! - **Seekable layout** (`cairn-frames`): independent zstd frames or gzip members of
//!   [`FRAME`] (4 MiB) logical bytes, then a seek table (zstd's seekable format: a skippable
//!   frame of per-frame sizes; for gzip the same table in the extra field of an empty last
//!   member), so the stored bytes stay a valid `.zst` / `.gz` stream. A ranged read fetches the
//!   table from the end, then only the frames the range overlaps: O(range), not O(offset),
//!   which keeps the parallel ranged downloader linear. Objects written before (one frame, no
//!   `cairn-frames`) still read, decompressing from the start.
//! - **Content digest**: a compressed put records `cairn-content-digest` (`sha256:` of the
//!   content; [`crate::digest`]) and hands the SHA-256 to the encryption layer below, which
//!   records its keyed digest instead. Streamed uploads send it as trailing metadata.
//! - Compression and hashing of a whole buffer run on the blocking pool, not on the async
//!   workers.
//! - Listings report stored sizes (a listing has no metadata).

use super::stack::{
    check_reserved, cpu, cpu_in_order, join_parts, pump, set_layer_meta, sizes_unknown, Ctx,
    Decode, Rechunk, Window, CONTENT_SHA256_HINT, CONTENT_SHA256_TRAILING,
};
use super::Layer;
use crate::digest::{DigestScheme, CONTENT_DIGEST_META};
use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use crate::store::*;
use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Write;

/// Metadata name of the algorithm: `zstd` or `gzip`.
pub const COMPRESSION_META: &str = "cairn-compression";
/// Metadata name of the logical (uncompressed) size in bytes.
pub const SIZE_META: &str = "cairn-size";

const SAMPLE: usize = 128 * 1024;
const OUT_CHUNK: usize = 256 * 1024;
const MAX_RATIO: f64 = 0.9;

/// A compression setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Store bytes as given.
    #[default]
    None,
    /// zstd at a level (1..=22; 3 is the default).
    Zstd(i32),
    /// gzip at a level (0..=9; 6 is the default).
    Gzip(u32),
}

impl Compression {
    /// Parses `none` | `zstd` | `gzip` and an optional level, checking the level's range.
    pub fn from_config(name: Option<&str>, level: Option<i32>) -> Result<Self> {
        let name = name.map(|n| n.trim().to_ascii_lowercase());
        match name.as_deref() {
            None | Some("none") | Some("") => Ok(Compression::None),
            Some("zstd") => {
                let l = level.unwrap_or(3);
                if !(1..=22).contains(&l) {
                    return Err(Error::invalid(format!(
                        "zstd compression_level must be 1..=22, not {l}"
                    )));
                }
                Ok(Compression::Zstd(l))
            }
            Some("gzip") => {
                let l = level.unwrap_or(6);
                if !(0..=9).contains(&l) {
                    return Err(Error::invalid(format!(
                        "gzip compression_level must be 0..=9, not {l}"
                    )));
                }
                Ok(Compression::Gzip(l as u32))
            }
            Some(other) => Err(Error::invalid(format!(
                "compression must be zstd, gzip or none, not {other:?}"
            ))),
        }
    }

    /// The name recorded in `cairn-compression` (None for no compression).
    pub fn name(&self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Zstd(_) => Some("zstd"),
            Compression::Gzip(_) => Some("gzip"),
        }
    }
}

/// Content types whose bytes are already compressed, so compressing again wastes CPU.
pub fn is_precompressed(content_type: &str) -> bool {
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let media = ["image/", "video/", "audio/"];
    if media.iter().any(|m| ct.starts_with(m)) {
        return !matches!(
            ct.as_str(),
            "image/svg+xml" | "image/bmp" | "audio/wav" | "audio/x-wav"
        );
    }
    matches!(
        ct.as_str(),
        "application/zip"
            | "application/gzip"
            | "application/x-gzip"
            | "application/zstd"
            | "application/x-zstd"
            | "application/x-7z-compressed"
            | "application/x-rar-compressed"
            | "application/vnd.rar"
            | "application/x-xz"
            | "application/x-bzip2"
            | "application/x-lz4"
            | "application/x-brotli"
            | "application/java-archive"
            | "application/epub+zip"
            | "font/woff"
            | "font/woff2"
    )
}

/// Compresses a whole buffer in the seekable layout: independent zstd frames (each with its
/// content checksum) or gzip members of [`FRAME`] logical bytes, then the seek table.
pub fn compress_bytes(c: Compression, data: &[u8]) -> Result<Vec<u8>> {
    if c == Compression::None {
        return Ok(data.to_vec());
    }
    let io =
        |e: std::io::Error| Error::new(ErrorKind::Unexpected, format!("compression failed: {e}"));
    let mut f = Framer::new(c);
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    f.write(data, &mut out).map_err(io)?;
    f.finish(&mut out).map_err(io)?;
    Ok(out)
}

/// Logical bytes per independent frame (zstd) or member (gzip): a range read decompresses at
/// most one frame on each side of the range beyond it.
pub const FRAME: usize = 4 * 1024 * 1024;
/// Metadata name marking the seekable layout: the logical bytes per frame ([`FRAME`]); the
/// stored bytes end with a seek table. Objects without it are one frame (written before).
pub const FRAMES_META: &str = "cairn-frames";

/// zstd's seekable format (contrib/seekable_format): a skippable frame holding one
/// (compressed size, decompressed size) entry per frame and a 9-byte footer.
const SKIPPABLE_MAGIC: u32 = 0x184D_2A5E;
const SEEKABLE_MAGIC: u32 = 0x8F92_EAB1;
const FOOTER: usize = 9;
/// gzip has no skippable frame: the same table rides in the extra field (subfield `CS`) of an
/// empty last member, which any gzip reader decodes to nothing. Its fixed end: an empty
/// deflate block, CRC-32 and size of nothing.
const GZIP_END: [u8; 10] = [3, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const GZIP_HEAD: usize = 10 + 2 + 4;
/// An extra field holds at most 65535 bytes; past this many entries neighbours are merged
/// (an entry may span several members: a range then decodes a little more).
const GZIP_MAX_ENTRIES: usize = (u16::MAX as usize - 4 - FOOTER) / 8;
/// Bytes read from the end of an object to find its seek table in one request, usually.
const TAIL_GUESS: u64 = 64 * 1024;

/// One frame: its stored and logical sizes.
type Entry = (u64, u64);

fn table(entries: &[Entry]) -> Vec<u8> {
    let mut t = Vec::with_capacity(entries.len() * 8 + FOOTER);
    for &(stored, logical) in entries {
        t.extend_from_slice(&(stored as u32).to_le_bytes());
        t.extend_from_slice(&(logical as u32).to_le_bytes());
    }
    t.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    t.push(0);
    t.extend_from_slice(&SEEKABLE_MAGIC.to_le_bytes());
    t
}

fn trailer(c: Compression, entries: &[Entry]) -> Vec<u8> {
    match c {
        Compression::Gzip(_) => {
            let mut e = entries.to_vec();
            while e.len() > GZIP_MAX_ENTRIES {
                e = e
                    .chunks(2)
                    .map(|p| p.iter().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1)))
                    .collect();
            }
            let t = table(&e);
            let mut out = vec![0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff];
            out.extend_from_slice(&((t.len() + 4) as u16).to_le_bytes());
            out.extend_from_slice(b"CS");
            out.extend_from_slice(&(t.len() as u16).to_le_bytes());
            out.extend_from_slice(&t);
            out.extend_from_slice(&GZIP_END);
            out
        }
        _ => {
            let t = table(entries);
            let mut out = SKIPPABLE_MAGIC.to_le_bytes().to_vec();
            out.extend_from_slice(&(t.len() as u32).to_le_bytes());
            out.extend_from_slice(&t);
            out
        }
    }
}

/// The trailer's length, read from the last bytes of an object (`tail`).
fn trailer_len(algorithm: &str, tail: &[u8]) -> Option<usize> {
    let end = match algorithm {
        "gzip" => tail.len().checked_sub(GZIP_END.len())?,
        _ => tail.len(),
    };
    let f = tail.get(end.checked_sub(FOOTER)?..end)?;
    if f[5..9] != SEEKABLE_MAGIC.to_le_bytes() {
        return None;
    }
    let n = u32::from_le_bytes(f[..4].try_into().unwrap()) as usize;
    let t = n.checked_mul(8)? + FOOTER;
    Some(match algorithm {
        "gzip" => GZIP_HEAD + t + GZIP_END.len(),
        _ => 8 + t,
    })
}

/// Parses a trailer (exactly [`trailer_len`] bytes) into the frames' entries.
fn parse_trailer(algorithm: &str, t: &[u8]) -> Option<Vec<Entry>> {
    let body = match algorithm {
        "gzip" => t.get(GZIP_HEAD..t.len().checked_sub(GZIP_END.len())?)?,
        _ => {
            if t.get(..4)? != SKIPPABLE_MAGIC.to_le_bytes() {
                return None;
            }
            t.get(8..)?
        }
    };
    let n = (body.len().checked_sub(FOOTER)?) / 8;
    Some(
        body[..n * 8]
            .chunks_exact(8)
            .map(|e| {
                let s = u32::from_le_bytes(e[..4].try_into().unwrap()) as u64;
                let l = u32::from_le_bytes(e[4..].try_into().unwrap()) as u64;
                (s, l)
            })
            .collect(),
    )
}

/// Splits a stream into independent frames of [`FRAME`] logical bytes and ends it with the
/// seek table.
struct Framer {
    c: Compression,
    enc: Option<Encoder>,
    in_frame: u64,
    frame_out: u64,
    entries: Vec<Entry>,
}

impl Framer {
    fn new(c: Compression) -> Self {
        Framer {
            c,
            enc: None,
            in_frame: 0,
            frame_out: 0,
            entries: Vec::new(),
        }
    }

    fn write(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        while !data.is_empty() {
            if self.enc.is_none() {
                self.enc = Some(Encoder::new(self.c)?);
            }
            let n = (FRAME - self.in_frame as usize).min(data.len());
            let o = self.enc.as_mut().expect("encoder").write(&data[..n])?;
            self.frame_out += o.len() as u64;
            out.extend_from_slice(&o);
            self.in_frame += n as u64;
            data = &data[n..];
            if self.in_frame == FRAME as u64 {
                self.end_frame(out)?;
            }
        }
        Ok(())
    }

    fn end_frame(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        let enc = match self.enc.take() {
            Some(e) => e,
            None => Encoder::new(self.c)?,
        };
        let o = enc.finish()?;
        self.frame_out += o.len() as u64;
        out.extend_from_slice(&o);
        self.entries.push((self.frame_out, self.in_frame));
        self.frame_out = 0;
        self.in_frame = 0;
        Ok(())
    }

    /// Ends the last frame (an empty object is one empty frame) and appends the seek table.
    fn finish(mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        if self.enc.is_some() || self.entries.is_empty() {
            self.end_frame(out)?;
        }
        out.extend_from_slice(&trailer(self.c, &self.entries));
        Ok(())
    }
}

/// Decompresses a whole buffer written by [`compress_bytes`] or a streamed upload.
pub fn decompress_bytes(algorithm: &str, data: &[u8]) -> Result<Vec<u8>> {
    let ctx = Ctx {
        store: String::new(),
        key: String::new(),
    };
    let mut dec = decoder(algorithm, &ctx)?;
    dec.push(Bytes::copy_from_slice(data))?;
    let mut out = Vec::new();
    while let Some(c) = dec.next_chunk()? {
        out.extend_from_slice(&c);
    }
    while let Some(c) = dec.finish_chunk()? {
        out.extend_from_slice(&c);
    }
    Ok(out)
}

fn ratio_ok(compressed: usize, original: usize) -> bool {
    (compressed as f64) <= MAX_RATIO * original as f64
}

/// Compresses objects on write and decompresses them on read (see the module docs).
#[derive(Debug)]
pub struct CompressStore<S> {
    inner: S,
    default: Compression,
}

/// Builds [`CompressStore`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompressLayer {
    /// What new objects get unless a put says otherwise.
    pub compression: Compression,
}

impl<S: Store> Layer<S> for CompressLayer {
    type Store = CompressStore<S>;
    fn layer(&self, inner: S) -> CompressStore<S> {
        CompressStore::new(inner, self.compression)
    }
}

impl<S: Store> fmt::Display for CompressStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

/// The algorithm an object was stored with, if any.
fn stored_algorithm(meta: &ObjectMeta) -> Option<&str> {
    meta.layer_meta.get(COMPRESSION_META).map(String::as_str)
}

fn logical_size(meta: &ObjectMeta) -> Option<u64> {
    meta.layer_meta.get(SIZE_META).and_then(|s| s.parse().ok())
}

impl<S: Store> CompressStore<S> {
    /// Wraps `inner`; new objects get `default` unless a put says otherwise.
    pub fn new(inner: S, default: Compression) -> Self {
        CompressStore { inner, default }
    }

    /// The setting for one put: an explicit hint wins, else the store's default unless the
    /// content type is already compressed.
    fn choose(&self, key: &Key, opts: &PutOptions) -> Result<(Compression, bool)> {
        let hint = opts.layer_hints.get("compression").map(String::as_str);
        let level = match opts.layer_hints.get("compression_level") {
            Some(l) => Some(l.trim().parse::<i32>().map_err(|_| {
                Error::invalid(format!(
                    "compression_level hint must be a whole number, not {l:?}"
                ))
            })?),
            None => None,
        };
        let err = |e: Error| {
            e.with_operation("put")
                .with_store(self)
                .with_key(key.as_str())
        };
        if let Some(h) = hint {
            return Ok((Compression::from_config(Some(h), level).map_err(err)?, true));
        }
        let c = match (self.default, level) {
            (Compression::None, _) | (_, None) => self.default,
            (d, Some(l)) => Compression::from_config(d.name(), Some(l)).map_err(err)?,
        };
        if opts.content_type.as_deref().is_some_and(is_precompressed) {
            return Ok((Compression::None, false));
        }
        Ok((c, false))
    }

    fn corrupt_table(&self, key: &Key) -> Error {
        Error::new(
            ErrorKind::Integrity,
            "compressed object's seek table is missing or corrupt",
        )
        .with_operation("get")
        .with_store(self)
        .with_key(key.as_str())
        .with_hint("a full read still checks every frame")
    }

    /// A range of a seekable object: reads the seek table at the end, then only the frames
    /// the range overlaps.
    async fn get_frames(
        &self,
        key: &Key,
        meta: ObjectMeta,
        alg: &str,
        range: GetRange,
        pin: Option<String>,
        dec: Box<dyn Decode>,
    ) -> Result<GetResult> {
        let stored = meta.size;
        let read = |r: std::ops::Range<u64>| {
            let opts = GetOptions {
                range: Some(GetRange::Bounded(r)),
                if_match: pin.clone(),
                raw: false,
                version: None,
            };
            async move { self.inner.get_opts(key, opts).await?.bytes().await }
        };
        let guess = stored.min(TAIL_GUESS);
        let tail = read(stored - guess..stored).await?;
        let tlen = trailer_len(alg, &tail).ok_or_else(|| self.corrupt_table(key))? as u64;
        if tlen > stored {
            return Err(self.corrupt_table(key));
        }
        let t = if tlen <= guess {
            tail.slice((guess - tlen) as usize..)
        } else {
            read(stored - tlen..stored).await?
        };
        let entries = parse_trailer(alg, &t).ok_or_else(|| self.corrupt_table(key))?;
        // Cumulative (stored, logical) starts of every frame, and the ends.
        let mut starts = Vec::with_capacity(entries.len() + 1);
        let (mut s, mut l) = (0u64, 0u64);
        for (es, el) in &entries {
            starts.push((s, l));
            s += es;
            l += el;
        }
        starts.push((s, l));
        if s + tlen != stored {
            return Err(self.corrupt_table(key));
        }
        let logical = l;
        let want = range
            .resolve(logical)
            .map_err(|e| e.with_operation("get").with_key(key.as_str()))?;
        let mut meta = meta;
        meta.size = logical;
        if want.start == want.end {
            return Ok(GetResult {
                verified_sha256: None,
                meta,
                range: want,
                body: futures::stream::empty().boxed(),
            });
        }
        // Frame i holds logical bytes starts[i].1..starts[i + 1].1.
        let first = starts.partition_point(|&(_, l)| l <= want.start) - 1;
        let last = starts.partition_point(|&(_, l)| l < want.end) - 1;
        let opts = GetOptions {
            range: Some(GetRange::Bounded(starts[first].0..starts[last + 1].0)),
            if_match: pin.clone(),
            raw: false,
            version: None,
        };
        let mut r = self.inner.get_opts(key, opts).await?;
        r.meta.size = logical;
        // Vouched for as stored bytes, not as what this layer hands over.
        r.verified_sha256 = None;
        r.body = pump(
            r.body,
            Window {
                dec,
                skip: want.start - starts[first].1,
                take: want.end - want.start,
            },
        );
        r.range = want;
        Ok(r)
    }

    fn unknown(&self, algorithm: &str, key: &Key) -> Error {
        Error::unsupported(format!(
            "object is compressed with {algorithm:?}, which cairn cannot read"
        ))
        .with_operation("get")
        .with_store(self)
        .with_key(key.as_str())
    }
}

fn decoder(algorithm: &str, ctx: &Ctx) -> Result<Box<dyn Decode>> {
    match algorithm {
        "zstd" => Ok(Box::new(ZstdDecode {
            dec: zstd::stream::raw::Decoder::new()
                .map_err(|e| ctx.err(ErrorKind::Unexpected, format!("zstd: {e}")))?,
            input: Bytes::new(),
            pos: 0,
            frame_done: false,
            ctx: ctx.clone(),
        })),
        "gzip" => Ok(Box::new(GzipDecode {
            dec: flate2::write::MultiGzDecoder::new(Vec::new()),
            input: Bytes::new(),
            pos: 0,
            ctx: ctx.clone(),
        })),
        other => Err(ctx.err(
            ErrorKind::Unsupported,
            format!("unknown compression {other:?}"),
        )),
    }
}

impl Decode for Box<dyn Decode> {
    fn push(&mut self, input: Bytes) -> Result<()> {
        (**self).push(input)
    }
    fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        (**self).next_chunk()
    }
    fn finish_chunk(&mut self) -> Result<Option<Bytes>> {
        (**self).finish_chunk()
    }
    fn done(&self) -> bool {
        (**self).done()
    }
}

struct ZstdDecode {
    dec: zstd::stream::raw::Decoder<'static>,
    input: Bytes,
    pos: usize,
    frame_done: bool,
    ctx: Ctx,
}

impl ZstdDecode {
    /// One run of the decoder into a fresh bounded buffer.
    fn run(&mut self) -> Result<(Vec<u8>, usize)> {
        use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
        let mut out = Vec::with_capacity(OUT_CHUNK);
        let mut inb = InBuffer::around(&self.input[self.pos..]);
        let hint = self
            .dec
            .run(&mut inb, &mut OutBuffer::around(&mut out))
            .map_err(|e| {
                self.ctx.err(
                    ErrorKind::Integrity,
                    format!("compressed data is corrupt (zstd: {e})"),
                )
            })?;
        let consumed = inb.pos();
        self.pos += consumed;
        // An idle call after a frame ends reports "need a header", not "done": ignore it.
        if consumed > 0 || !out.is_empty() {
            self.frame_done = hint == 0;
        }
        Ok((out, consumed))
    }
}

impl Decode for ZstdDecode {
    fn push(&mut self, input: Bytes) -> Result<()> {
        debug_assert!(self.pos >= self.input.len());
        self.input = input;
        self.pos = 0;
        Ok(())
    }
    fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            let (out, consumed) = self.run()?;
            if !out.is_empty() {
                return Ok(Some(out.into()));
            }
            if self.pos >= self.input.len() {
                return Ok(None);
            }
            if consumed == 0 {
                return Err(self.ctx.err(
                    ErrorKind::Integrity,
                    "compressed data is corrupt (zstd made no progress)",
                ));
            }
        }
    }
    fn finish_chunk(&mut self) -> Result<Option<Bytes>> {
        let (out, _) = self.run()?;
        if !out.is_empty() {
            return Ok(Some(out.into()));
        }
        if !self.frame_done {
            return Err(self.ctx.err(
                ErrorKind::Integrity,
                "compressed data is truncated (zstd frame incomplete)",
            ));
        }
        Ok(None)
    }
}

struct GzipDecode {
    dec: flate2::write::MultiGzDecoder<Vec<u8>>,
    input: Bytes,
    pos: usize,
    ctx: Ctx,
}

impl Decode for GzipDecode {
    fn push(&mut self, input: Bytes) -> Result<()> {
        self.input = input;
        self.pos = 0;
        Ok(())
    }
    fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            if !self.dec.get_ref().is_empty() {
                return Ok(Some(std::mem::take(self.dec.get_mut()).into()));
            }
            if self.pos >= self.input.len() {
                return Ok(None);
            }
            // Each write inflates into a 32 KiB window at most, so output stays bounded.
            let end = (self.pos + OUT_CHUNK / 8).min(self.input.len());
            let n = self.dec.write(&self.input[self.pos..end]).map_err(|e| {
                self.ctx.err(
                    ErrorKind::Integrity,
                    format!("compressed data is corrupt (gzip: {e})"),
                )
            })?;
            if n == 0 {
                return Err(self.ctx.err(
                    ErrorKind::Integrity,
                    "compressed data has bytes after its end (gzip)",
                ));
            }
            self.pos += n;
        }
    }
    fn finish_chunk(&mut self) -> Result<Option<Bytes>> {
        if !self.dec.get_ref().is_empty() {
            return Ok(Some(std::mem::take(self.dec.get_mut()).into()));
        }
        self.dec.try_finish().map_err(|e| {
            self.ctx.err(
                ErrorKind::Integrity,
                format!("compressed data is truncated or corrupt (gzip: {e})"),
            )
        })?;
        let rest = std::mem::take(self.dec.get_mut());
        Ok((!rest.is_empty()).then(|| rest.into()))
    }
}

enum Encoder {
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
}

impl Encoder {
    fn new(c: Compression) -> std::io::Result<Self> {
        Ok(match c {
            Compression::Zstd(level) => {
                let mut e = zstd::stream::write::Encoder::new(Vec::new(), level)?;
                e.include_checksum(true)?;
                Encoder::Zstd(e)
            }
            Compression::Gzip(level) => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(level),
            )),
            Compression::None => unreachable!("no encoder without compression"),
        })
    }
    /// Compresses `data`, returning what the encoder emitted so far.
    fn write(&mut self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        Ok(match self {
            Encoder::Zstd(e) => {
                e.write_all(data)?;
                std::mem::take(e.get_mut())
            }
            Encoder::Gzip(e) => {
                e.write_all(data)?;
                std::mem::take(e.get_mut())
            }
        })
    }
    fn finish(self) -> std::io::Result<Vec<u8>> {
        match self {
            Encoder::Zstd(e) => e.finish(),
            Encoder::Gzip(e) => e.finish(),
        }
    }
}

struct CompressUpload {
    parts: Rechunk,
    framer: Option<Framer>,
    logical: u64,
    hasher: Sha256,
    /// Whether this layer records the content digest itself (no encryption below).
    plain_digest: bool,
    key: Key,
}

impl fmt::Debug for CompressUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompressUpload")
            .field("key", &self.key)
            .field("parts", &self.parts)
            .finish()
    }
}

fn io_err(key: &Key) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| {
        Error::new(ErrorKind::Unexpected, format!("compression failed: {e}"))
            .with_operation("put")
            .with_key(key.as_str())
    }
}

#[async_trait]
impl MultipartUpload for CompressUpload {
    fn put_part(&mut self, data: Bytes) -> BoxFuture<'static, Result<()>> {
        // Compressed in call order, here; the part futures only carry bytes to the store.
        self.logical += data.len() as u64;
        self.parts.size_from(data.len(), 0);
        let mut out = Vec::with_capacity(data.len() / 2);
        let (hasher, framer) = (
            &mut self.hasher,
            self.framer.as_mut().expect("upload not finished"),
        );
        let written = cpu_in_order(data.len(), || {
            hasher.update(&data);
            framer.write(&data, &mut out)
        });
        if let Err(e) = written {
            let e = io_err(&self.key)(e);
            return Box::pin(async move { Err(e) });
        }
        join_parts(self.parts.write(&out))
    }
    async fn complete(&mut self) -> Result<PutResult> {
        let framer = self
            .framer
            .take()
            .ok_or_else(|| Error::invalid("upload already completed"))?;
        let mut out = Vec::new();
        framer.finish(&mut out).map_err(io_err(&self.key))?;
        let mut futs = self.parts.write(&out);
        futs.extend(self.parts.flush());
        join_parts(futs).await?;
        let sha: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
        let mut trailing = Metadata::from([(SIZE_META.to_string(), self.logical.to_string())]);
        if self.plain_digest {
            trailing.insert(
                CONTENT_DIGEST_META.to_string(),
                DigestScheme::Sha256.digest_of(&sha),
            );
        } else {
            // For the encryption layer below, which turns it into its keyed digest.
            trailing.insert(CONTENT_SHA256_HINT.to_string(), hex::encode(sha));
        }
        self.parts.inner.add_trailing_metadata(trailing);
        self.parts.inner.complete().await
    }
    async fn abort(&mut self) -> Result<()> {
        self.parts.inner.abort().await
    }
    fn add_trailing_metadata(&mut self, metadata: Metadata) {
        self.parts.inner.add_trailing_metadata(metadata);
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: Store> Store for CompressStore<S> {
    fn capabilities(&self) -> Capabilities {
        let mut c = self.inner.capabilities();
        if self.default != Compression::None {
            c.part_copies += 1;
        }
        c
    }

    async fn put_opts(&self, key: &Key, data: Bytes, mut opts: PutOptions) -> Result<PutResult> {
        check_reserved(&opts, key).map_err(|e| e.with_store(self))?;
        let (c, forced) = self.choose(key, &opts)?;
        if c == Compression::None {
            return self.inner.put_opts(key, data, opts).await;
        }
        let err = |e: Error| {
            e.with_operation("put")
                .with_store(self)
                .with_key(key.as_str())
        };
        // Off the async workers: gzip runs at ~20 MB/s.
        let body = data.clone();
        let packed = cpu(data.len(), move || {
            if !forced && body.len() > SAMPLE {
                let sample = compress_bytes(c, &body[..SAMPLE])?;
                if !ratio_ok(sample.len(), SAMPLE) {
                    return Ok(None);
                }
            }
            let packed = compress_bytes(c, &body)?;
            let sha: [u8; 32] = Sha256::digest(&body).into();
            Ok(Some((packed, sha)))
        })
        .await
        .map_err(err)?;
        let Some((packed, sha)) = packed else {
            return self.inner.put_opts(key, data, opts).await;
        };
        // Layers below that record a content digest (encryption) reuse this hash.
        opts.layer_hints
            .insert(CONTENT_SHA256_HINT.to_string(), hex::encode(sha));
        if !forced && !ratio_ok(packed.len(), data.len()) {
            return self.inner.put_opts(key, data, opts).await;
        }
        if let DigestScheme::Sha256 = self.inner.digest_scheme() {
            set_layer_meta(
                &mut opts,
                CONTENT_DIGEST_META,
                DigestScheme::Sha256.digest_of(&sha),
            );
        }
        set_layer_meta(&mut opts, COMPRESSION_META, c.name().expect("compressing"));
        set_layer_meta(&mut opts, SIZE_META, data.len().to_string());
        set_layer_meta(&mut opts, FRAMES_META, FRAME.to_string());
        self.inner.put_opts(key, packed.into(), opts).await
    }

    async fn put_multipart_opts(
        &self,
        key: &Key,
        mut opts: PutOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        check_reserved(&opts, key).map_err(|e| e.with_store(self))?;
        let (c, _) = self.choose(key, &opts)?;
        if c == Compression::None {
            return self.inner.put_multipart_opts(key, opts).await;
        }
        set_layer_meta(&mut opts, COMPRESSION_META, c.name().expect("compressing"));
        set_layer_meta(&mut opts, FRAMES_META, FRAME.to_string());
        let plain_digest = matches!(self.inner.digest_scheme(), DigestScheme::Sha256);
        if !plain_digest {
            opts.layer_hints.insert(
                CONTENT_SHA256_HINT.to_string(),
                CONTENT_SHA256_TRAILING.to_string(),
            );
        }
        let caps = self.inner.capabilities();
        let inner = self.inner.put_multipart_opts(key, opts).await?;
        Ok(Box::new(CompressUpload {
            parts: Rechunk::new(inner, &caps),
            framer: Some(Framer::new(c)),
            logical: 0,
            hasher: Sha256::new(),
            plain_digest,
            key: key.clone(),
        }))
    }

    async fn get_opts(&self, key: &Key, opts: GetOptions) -> Result<GetResult> {
        if opts.raw {
            return self.inner.get_opts(key, opts).await;
        }
        let Some(range) = opts.range.clone() else {
            let r = self.inner.get_opts(key, opts).await?;
            let Some(alg) = stored_algorithm(&r.meta).map(str::to_string) else {
                return Ok(r);
            };
            let ctx = Ctx::new(self, key);
            let dec = decoder(&alg, &ctx).map_err(|_| self.unknown(&alg, key))?;
            let mut r = r;
            r.meta.size = logical_size(&r.meta).unwrap_or(r.meta.size);
            r.range = 0..r.meta.size;
            r.body = pump(r.body, dec);
            r.verified_sha256 = None;
            return Ok(r);
        };
        // The ranged path heads the current object, so an old version is only read whole.
        if opts.version.is_some() {
            return Err(Error::unsupported(
                "a ranged read of an old version through the compression layer",
            )
            .with_operation("get")
            .with_store(self)
            .with_key(key.as_str())
            .with_hint("read the version whole"));
        }
        // A ranged read needs the metadata first. Where this store compresses, ask for it
        // alone; elsewhere most objects are not compressed, so ask for the range optimistically
        // (a range valid for the logical size may be past the end of the compressed bytes).
        let meta = if self.default != Compression::None {
            self.inner.head(key).await?
        } else {
            match self.inner.get_opts(key, opts.clone()).await {
                Ok(r) if stored_algorithm(&r.meta).is_none() => return Ok(r),
                Ok(r) => r.meta,
                Err(e) if e.kind() == ErrorKind::InvalidInput => {
                    let m = self.inner.head(key).await?;
                    if stored_algorithm(&m).is_none() {
                        return Err(e);
                    }
                    m
                }
                Err(e) => return Err(e),
            }
        };
        let pin = match (&opts.if_match, self.inner.capabilities().conditional_get) {
            (Some(m), _) => Some(m.clone()),
            (None, true) => meta.etag.clone(),
            (None, false) => None,
        };
        let Some(alg) = stored_algorithm(&meta).map(str::to_string) else {
            let again = GetOptions {
                if_match: pin,
                ..opts
            };
            return self.inner.get_opts(key, again).await;
        };
        let dec = decoder(&alg, &Ctx::new(self, key)).map_err(|_| self.unknown(&alg, key))?;
        if meta.layer_meta.contains_key(FRAMES_META) {
            return self.get_frames(key, meta, &alg, range, pin, dec).await;
        }
        // A single-frame object (written before the seekable layout): decompress from the
        // start and skip to the range.
        let Some(size) = logical_size(&meta) else {
            return Err(Error::unsupported(
                "ranged read of a compressed object whose logical size is not recorded \
                 (streamed with the checksum layer off)",
            )
            .with_operation("get")
            .with_store(self)
            .with_key(key.as_str())
            .with_hint("read the whole object instead"));
        };
        let want = range
            .resolve(size)
            .map_err(|e| e.with_operation("get").with_key(key.as_str()))?;
        let full = GetOptions {
            range: None,
            if_match: pin,
            raw: false,
            version: None,
        };
        let mut r = self.inner.get_opts(key, full).await?;
        r.meta.size = size;
        r.verified_sha256 = None;
        let window = Window {
            dec,
            skip: want.start,
            take: want.end - want.start,
        };
        r.body = pump(r.body, window);
        r.range = want;
        Ok(r)
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        let mut m = self.inner.head(key).await?;
        if stored_algorithm(&m).is_some() {
            m.size = logical_size(&m).unwrap_or(m.size);
        }
        Ok(m)
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        self.inner.delete(key).await
    }

    fn delete_stream<'a>(&'a self, keys: BoxStream<'a, Key>) -> BoxStream<'a, (Key, Result<()>)> {
        self.inner.delete_stream(keys)
    }

    fn list(&self, opts: ListOptions) -> BoxStream<'static, Result<ListEntry>> {
        // A listing has no metadata: when this store compresses, listed (stored) sizes are not
        // the logical ones. When it does not, stored = logical is assumed; a compressed object
        // is recognised at head or get.
        let inner = self.inner.list(opts);
        if self.default == Compression::None {
            return inner;
        }
        sizes_unknown(inner)
    }

    async fn copy_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, opts).await
    }

    async fn rename_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        self.inner.rename_opts(from, to, opts).await
    }

    async fn health_check(&self) -> Result<()> {
        self.inner.health_check().await
    }

    fn digest_scheme(&self) -> crate::digest::DigestScheme {
        self.inner.digest_scheme()
    }

    fn server_side(&self) -> Option<crate::server_side::ServerSide> {
        let s = self.inner.server_side()?;
        Some(match self.default {
            Compression::None => s,
            _ => s.transformed_by("compression"),
        })
    }
}
