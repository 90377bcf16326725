//! The streaming reader and writer behind `Store.open(key, "rb" / "wb")`.
//!
//! The Python classes in `cairn/_io.py` adapt these to `io.RawIOBase` / `io.BufferedIOBase`.

use crate::convert::{self, PutResult};
use crate::errors::to_py;
use crate::handle::busy;
use crate::{runtime, wait, wait_here, Owner};
use bytes::{Bytes, BytesMut};
use cairn::transfer::WriterOptions;
use cairn::{DynStore, ErrorKind, GetOptions, GetRange, Key, PutOptions};
use futures::stream::{BoxStream, StreamExt};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::sync::Mutex;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

fn closed_error() -> PyErr {
    PyValueError::new_err("I/O operation on closed file")
}

struct ReadState {
    store: DynStore,
    key: Key,
    size: u64,
    /// Pins later ranged reads to the version first read, when the store can enforce it.
    if_match: Option<String>,
    /// Position of the next byte `read` returns; `chunk` starts here.
    pos: u64,
    chunk: Bytes,
    /// The open response body continuing after `chunk`; dropped on seek.
    body: Option<BoxStream<'static, cairn::Result<Bytes>>>,
    closed: bool,
}

impl ReadState {
    /// Reads up to `want` bytes (all remaining if None), stopping early only at the end.
    async fn fill(&mut self, want: Option<usize>) -> cairn::Result<Vec<Bytes>> {
        let mut out = Vec::new();
        let mut got = 0usize;
        loop {
            let left = want.map(|w| w - got);
            if left == Some(0) {
                break;
            }
            if !self.chunk.is_empty() {
                let take = left.unwrap_or(usize::MAX).min(self.chunk.len());
                out.push(self.chunk.split_to(take));
                got += take;
                self.pos += take as u64;
                continue;
            }
            if self.pos >= self.size {
                break;
            }
            if self.body.is_none() {
                let opts = GetOptions {
                    range: Some(GetRange::Offset(self.pos)),
                    if_match: self.if_match.clone(),
                    ..Default::default()
                };
                self.body = Some(self.store.get_opts(&self.key, opts).await?.body);
            }
            match self.body.as_mut().expect("body just set").next().await {
                Some(Ok(c)) => self.chunk = c,
                Some(Err(e)) => {
                    self.body = None;
                    return Err(e.with_operation("read").with_key(self.key.as_str()));
                }
                None => {
                    self.body = None;
                    return Err(cairn::Error::new(
                        ErrorKind::Network,
                        format!("the body ended at byte {} of {}", self.pos, self.size),
                    )
                    .with_operation("read")
                    .with_key(self.key.as_str()));
                }
            }
        }
        Ok(out)
    }

    /// A copy of the reading position that takes the buffered chunk and the open body along,
    /// to be filled off this thread and put back.
    fn split_off(&mut self) -> ReadState {
        ReadState {
            store: self.store.clone(),
            key: self.key.clone(),
            size: self.size,
            if_match: self.if_match.clone(),
            pos: self.pos,
            chunk: std::mem::take(&mut self.chunk),
            body: self.body.take(),
            closed: false,
        }
    }

    fn seek_to(&mut self, to: u64) {
        if to == self.pos {
            return;
        }
        if to > self.pos && to - self.pos <= self.chunk.len() as u64 {
            // Forward within the buffered chunk: keep the open body.
            let skip = (to - self.pos) as usize;
            let _ = self.chunk.split_to(skip);
        } else {
            self.chunk = Bytes::new();
            self.body = None;
        }
        self.pos = to;
    }
}

/// A streaming, seekable reader over one object (seeks past the buffer start a ranged GET).
#[pyclass(frozen, module = "cairn._cairn", name = "Reader")]
pub(crate) struct Reader {
    st: Mutex<ReadState>,
    owner: Owner,
    /// The object's key.
    #[pyo3(get)]
    key: String,
    /// The object's size in bytes.
    #[pyo3(get)]
    size: u64,
    /// The ETag of the version being read, if the store has them.
    #[pyo3(get)]
    etag: Option<String>,
}

impl Reader {
    /// Starts reading `key`; raises `NotFound` now rather than on the first read.
    pub(crate) fn open(py: Python<'_>, store: DynStore, key: Key) -> PyResult<Reader> {
        let res = {
            let (store, key) = (&store, &key);
            crate::run_here(py, async move {
                store.get_opts(key, GetOptions::default()).await
            })?
        };
        let meta = res.meta;
        let if_match = if store.capabilities().conditional_get {
            meta.etag.clone()
        } else {
            None
        };
        Ok(Reader {
            owner: Owner::here(),
            key: key.to_string(),
            size: meta.size,
            etag: meta.etag,
            st: Mutex::new(ReadState {
                store,
                key,
                size: meta.size,
                if_match,
                pos: 0,
                chunk: Bytes::new(),
                body: Some(res.body),
                closed: false,
            }),
        })
    }
}

#[pymethods]
impl Reader {
    /// Reads up to `size` bytes (all remaining if negative); `b""` at the end.
    #[pyo3(signature = (size=-1))]
    fn read<'py>(&self, py: Python<'py>, size: i64) -> PyResult<Bound<'py, PyBytes>> {
        self.owner.check(py)?;
        let mut st = self.st.try_lock().map_err(|_| busy())?;
        if st.closed {
            return Err(closed_error());
        }
        let want = usize::try_from(size).ok();
        // Served from the buffered chunk: no need to release the GIL.
        if let Some(w) = want {
            if w <= st.chunk.len() {
                let out = st.chunk.split_to(w);
                st.pos += w as u64;
                return Ok(PyBytes::new(py, &out));
            }
        }
        // Filled in a task of the runtime, not by polling the body from this thread: the
        // body's chunks (and their checks) are then taken where they arrive, and this thread
        // wakes once per read, not once per network chunk. If the wait is abandoned
        // (Ctrl-C), the open body goes with it and the next read asks from `pos` again.
        let mut part = st.split_off();
        let (part, r) = wait(py, async move {
            let r = part.fill(want).await;
            (part, r)
        })?;
        (st.pos, st.chunk, st.body) = (part.pos, part.chunk, part.body);
        let chunks = r.map_err(|e| to_py(py, e))?;
        convert::bytes_out(py, &chunks)
    }

    /// Moves to `offset` relative to `whence` (0 start, 1 current, 2 end); returns the position.
    #[pyo3(signature = (offset, whence=0))]
    fn seek(&self, offset: i64, whence: i32) -> PyResult<u64> {
        let mut st = self.st.try_lock().map_err(|_| busy())?;
        if st.closed {
            return Err(closed_error());
        }
        let base = match whence {
            0 => 0i128,
            1 => st.pos as i128,
            2 => st.size as i128,
            _ => {
                return Err(PyValueError::new_err(format!(
                    "invalid whence ({whence}, should be 0, 1 or 2)"
                )))
            }
        };
        let to = base + offset as i128;
        if to < 0 {
            return Err(PyValueError::new_err(format!(
                "negative seek position {to}"
            )));
        }
        st.seek_to(to as u64);
        Ok(st.pos)
    }

    /// The current position.
    fn tell(&self) -> PyResult<u64> {
        Ok(self.st.try_lock().map_err(|_| busy())?.pos)
    }

    /// Stops reading and drops the connection.
    fn close(&self) -> PyResult<()> {
        let mut st = self.st.try_lock().map_err(|_| busy())?;
        st.closed = true;
        st.body = None;
        st.chunk = Bytes::new();
        Ok(())
    }

    /// Whether `close` was called.
    #[getter]
    fn closed(&self) -> bool {
        // A busy reader is in a read, so it is open.
        self.st.try_lock().map(|s| s.closed).unwrap_or(false)
    }
}

enum Cmd {
    Data(Bytes),
    Finish,
}

/// Runs the cairn transfer writer for one object, fed through a bounded channel. If the
/// channel closes without `Finish` (abort, or the Python object was dropped), the upload is
/// aborted and nothing is written.
async fn write_task(
    store: DynStore,
    key: Key,
    put: PutOptions,
    opts: WriterOptions,
    mut rx: mpsc::Receiver<Cmd>,
) -> cairn::Result<cairn::PutResult> {
    let mut w = cairn::transfer::Writer::new(&*store, key.clone(), put, opts);
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Cmd::Data(b) => w.write(b).await.map_err(|e| e.with_operation("write"))?,
            Cmd::Finish => {
                return w
                    .finish()
                    .await
                    .map_err(|e| e.with_operation("close").with_key(key.as_str()))
            }
        }
    }
    w.abort().await?;
    Err(cairn::Error::new(ErrorKind::Unexpected, "the write was aborted").with_key(key.as_str()))
}

/// Bytes gathered before handing a chunk to the upload task (fewer GIL releases).
const CHUNK: usize = 1024 * 1024;

struct WriteState {
    tx: Option<mpsc::Sender<Cmd>>,
    task: Option<JoinHandle<cairn::Result<cairn::PutResult>>>,
    buf: BytesMut,
    written: u64,
    result: Option<PutResult>,
}

impl WriteState {
    /// Sends a chunk; if the task already failed, returns its error.
    fn send(&mut self, py: Python<'_>, data: Bytes) -> PyResult<()> {
        let tx = self.tx.as_ref().ok_or_else(closed_error)?;
        let sent = wait_here(py, tx.send(Cmd::Data(data)))?;
        if sent.is_err() {
            return Err(self.fail(py));
        }
        Ok(())
    }

    /// The task's error after it stopped early; the writer is closed afterwards.
    fn fail(&mut self, py: Python<'_>) -> PyErr {
        self.tx = None;
        self.buf.clear();
        let Some(task) = self.task.take() else {
            return closed_error();
        };
        match wait_here(py, task) {
            Err(interrupted) => interrupted,
            Ok(Ok(Err(e))) => to_py(py, e),
            Ok(Ok(Ok(_))) => closed_error(),
            Ok(Err(join)) => {
                pyo3::exceptions::PyRuntimeError::new_err(format!("the upload task failed: {join}"))
            }
        }
    }
}

/// A streaming writer for one object: bounded memory, committed by `close()`,
/// discarded by `abort()` or when dropped unclosed.
#[pyclass(frozen, module = "cairn._cairn", name = "Writer")]
pub(crate) struct Writer {
    st: Mutex<WriteState>,
    owner: Owner,
    /// The object's key.
    #[pyo3(get)]
    key: String,
}

impl Writer {
    /// Starts the upload task. Memory is bounded by about
    /// `part_size * (concurrency + 1) + 2 MiB`.
    pub(crate) fn start(
        store: DynStore,
        key: Key,
        put: PutOptions,
        part_size: Option<usize>,
        concurrency: Option<usize>,
    ) -> Writer {
        let mut opts = WriterOptions::default();
        if let Some(p) = part_size {
            opts.part_size = p;
        }
        if let Some(c) = concurrency {
            opts.concurrency = c;
        }
        let (tx, rx) = mpsc::channel(1);
        let name = key.to_string();
        let task = runtime().spawn(write_task(store, key, put, opts, rx));
        Writer {
            owner: Owner::here(),
            key: name,
            st: Mutex::new(WriteState {
                tx: Some(tx),
                task: Some(task),
                buf: BytesMut::new(),
                written: 0,
                result: None,
            }),
        }
    }
}

#[pymethods]
impl Writer {
    /// Appends bytes-like `data`; returns its length.
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        self.owner.check(py)?;
        let data = convert::data(py, data)?;
        let mut st = self.st.try_lock().map_err(|_| busy())?;
        if st.tx.is_none() {
            return Err(closed_error());
        }
        let n = data.len();
        st.written += n as u64;
        if st.buf.is_empty() && n >= CHUNK {
            st.send(py, data)?;
        } else {
            st.buf.extend_from_slice(&data);
            if st.buf.len() >= CHUNK {
                let chunk = st.buf.split().freeze();
                st.send(py, chunk)?;
            }
        }
        Ok(n)
    }

    /// Uploads the rest and commits the object; returns its `PutResult`.
    /// Closing again returns the same result.
    fn close(&self, py: Python<'_>) -> PyResult<Option<PutResult>> {
        self.owner.check(py)?;
        let mut st = self.st.try_lock().map_err(|_| busy())?;
        if st.tx.is_none() {
            return Ok(st.result.clone());
        }
        if !st.buf.is_empty() {
            let chunk = st.buf.split().freeze();
            st.send(py, chunk)?;
        }
        let tx = st.tx.take().expect("checked above");
        if wait_here(py, tx.send(Cmd::Finish))?.is_err() {
            st.tx = Some(tx);
            return Err(st.fail(py));
        }
        drop(tx);
        let task = st.task.take().expect("task runs until close");
        let res = match wait_here(py, task)? {
            Ok(r) => r.map_err(|e| to_py(py, e))?,
            Err(join) => {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                    "the upload task failed: {join}"
                )))
            }
        };
        let res = PutResult::from(res);
        st.result = Some(res.clone());
        Ok(Some(res))
    }

    /// Discards everything written; the object is left as it was.
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        // In a forked child the upload task does not exist; dropping the handle is all we can do.
        if self.owner.check(py).is_err() {
            return Ok(());
        }
        let mut st = self.st.try_lock().map_err(|_| busy())?;
        st.tx = None;
        st.buf.clear();
        if let Some(task) = st.task.take() {
            // The task aborts the upload when it sees the closed channel; wait for that.
            let _ = wait_here(py, task)?;
        }
        Ok(())
    }

    /// Bytes accepted so far.
    #[getter]
    fn written(&self) -> PyResult<u64> {
        Ok(self.st.try_lock().map_err(|_| busy())?.written)
    }

    /// Whether the writer was closed or aborted.
    #[getter]
    fn closed(&self) -> bool {
        // A busy writer is in a write or close; it counts as open until that returns.
        self.st.try_lock().map(|s| s.tx.is_none()).unwrap_or(false)
    }
}
