//! Receiving the signals other nodes send with `NOTIFY`.

use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use stint_store::Signal;

use crate::tables::leases::CHANNEL;

/// Longest pause between attempts to listen again after the connection was lost.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Listens on the signal channel and forwards every signal until nobody receives them any more,
/// connecting again (with a growing pause) whenever the connection is lost. Signals sent while it
/// is not connected are lost; listeners look again from time to time for that reason.
pub(crate) async fn listen(pool: PgPool, signals: UnboundedSender<Signal>) {
    let mut backoff = Duration::from_millis(100);
    while !signals.is_closed() {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen(CHANNEL).await {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    loop {
                        match listener.recv().await {
                            Ok(notification) => {
                                let Some(signal) = Signal::decode(notification.payload()) else { continue };
                                if signals.unbounded_send(signal).is_err() {
                                    return;
                                }
                            }
                            Err(error) => {
                                tracing::warn!(%error, "lost the signal connection; listening again");
                                break;
                            }
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "could not listen for signals"),
            },
            Err(error) => tracing::warn!(%error, "could not connect to listen for signals"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
