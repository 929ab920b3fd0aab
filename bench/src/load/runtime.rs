//! A server's own runtime inside async code: the load's coordinator and echo server run on
//! their own named threads, so their CPU time is told apart from the load's.

/// Worker threads of a server's own runtime: the development machine's two cores.
pub const SERVER_WORKER_THREADS: usize = 2;

/// A runtime owned by async code: dropping a runtime blocks, which an async context forbids,
/// so it is shut down in the background instead (also on early returns).
pub struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl OwnRuntime {
    /// A multi-threaded runtime of [`SERVER_WORKER_THREADS`] threads named `thread_name`.
    pub fn new(thread_name: &str) -> std::io::Result<OwnRuntime> {
        Ok(OwnRuntime(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(SERVER_WORKER_THREADS)
                .thread_name(thread_name)
                .enable_all()
                .build()?,
        )))
    }
}

impl std::ops::Deref for OwnRuntime {
    type Target = tokio::runtime::Runtime;
    fn deref(&self) -> &Self::Target {
        self.0.as_ref().expect("present until dropped")
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}
