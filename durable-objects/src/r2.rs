//! R2 housekeeping shared by the room object and the Worker.

use worker::Bucket;

/// Deletes every object whose key starts with `prefix`, a listing page at a time.
pub async fn delete_prefix(bucket: &Bucket, prefix: &str) -> worker::Result<()> {
    loop {
        let listed = bucket.list().prefix(prefix).execute().await?;
        let keys: Vec<String> = listed.objects().iter().map(|o| o.key()).collect();
        if keys.is_empty() {
            return Ok(());
        }
        bucket.delete_multiple(keys).await?;
        if !listed.truncated() {
            return Ok(());
        }
    }
}
