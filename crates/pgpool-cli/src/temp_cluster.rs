//! `pgpool temp-cluster`: a throwaway PostgreSQL for scripts, kept until stdin closes or a
//! signal.

use std::io::{self, Read, Write};

use crate::util::Failure;

/// Starts the cluster, prints its URL, waits for end-of-file on stdin or SIGINT/SIGTERM.
pub(crate) fn run() -> Result<(), Failure> {
    let cluster = crate::start_cluster()?;
    if crate::signals::interrupted() {
        return Ok(());
    }
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{}", cluster.url())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write the URL to stdout: {e}"))?;
    drop(stdout);

    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(2);
    let eof_tx = done_tx.clone();
    std::thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(move || {
            let mut sink = [0u8; 4096];
            let mut stdin = io::stdin().lock();
            loop {
                match stdin.read(&mut sink) {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            let _ = eof_tx.send(());
        })
        .map_err(|e| format!("cannot start the stdin thread: {e}"))?;
    std::thread::Builder::new()
        .name("signal-watch".into())
        .spawn(move || {
            crate::signals::wait();
            let _ = done_tx.send(());
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    let _ = done_rx.recv();
    drop(cluster);
    Ok(())
}
