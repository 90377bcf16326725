//! One S3 test server (moto, Garage, the 3-node Garage) as the CLI tests see it: settings for
//! the binary, and an aws-sdk-s3 client of its own to check what the server holds.

use super::{var, Sandbox};
use std::collections::BTreeMap;

pub struct S3 {
    pub endpoint: String,
    pub region: String,
    key_id: String,
    secret: String,
    pub bucket: String,
    /// The quirks row the server is measured as (`moto`, `garage`).
    pub provider: &'static str,
    pub rt: tokio::runtime::Runtime,
    pub admin: cairn::backend::s3::admin::Admin,
}

impl S3 {
    /// The server whose settings are `CAIRN_TEST_{SERVER}_*` (MOTO, GARAGE, GARAGE3).
    pub fn from_env(server: &str) -> S3 {
        let v = |k: &str| var(&format!("CAIRN_TEST_{server}_{k}"));
        let (endpoint, region, key_id, secret, bucket) = (
            v("ENDPOINT"),
            v("REGION"),
            v("ACCESS_KEY_ID"),
            v("SECRET_ACCESS_KEY"),
            v("BUCKET"),
        );
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mut c = cairn::Config::default();
        let provider = if server == "MOTO" { "moto" } else { "garage" };
        for (k, val) in [
            ("endpoint", endpoint.as_str()),
            ("region", region.as_str()),
            ("access_key_id", key_id.as_str()),
            ("secret_access_key", secret.as_str()),
            ("allow_http", "true"),
            ("path_style", "true"),
            ("provider", provider),
        ] {
            c.set(k, val).unwrap();
        }
        let (admin, _) = rt
            .block_on(cairn::open_admin(&format!("s3://{bucket}"), c))
            .unwrap_or_else(|e| panic!("{server} admin client: {e}"));
        S3 {
            endpoint,
            region,
            key_id,
            secret,
            bucket,
            provider,
            rt,
            admin,
        }
    }

    /// A sandbox whose runs reach the server (credentials through the environment only) and
    /// name its provider, as a user who knows the server would.
    pub fn sandbox(&self) -> Sandbox {
        let mut s = Sandbox::new();
        s.env.extend([
            ("CAIRN_PROVIDER".into(), self.provider.into()),
            ("AWS_ACCESS_KEY_ID".into(), self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret.clone()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ]);
        s
    }

    /// `rest` after the flags that point the binary at this server.
    pub fn args<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec![
            "--endpoint",
            &self.endpoint,
            "--region",
            &self.region,
            "--path-style",
        ];
        a.extend_from_slice(rest);
        a
    }

    /// A fresh key prefix for one test: `RUN_ID/SUITE/NONCE`.
    pub fn prefix(&self, suite: &str) -> String {
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("{}/{suite}/{nonce:x}", var("CAIRN_TEST_RUN_ID"))
    }

    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// Keys of the multipart uploads the server holds open under `prefix` (first page; no
    /// part listing, whose moto replies the SDK refuses).
    pub fn open_uploads(&self, prefix: &str) -> Vec<String> {
        let out = self
            .rt
            .block_on(
                self.admin
                    .sdk()
                    .list_multipart_uploads()
                    .bucket(&self.bucket)
                    .prefix(prefix)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("list multipart uploads: {e:?}"));
        out.uploads()
            .iter()
            .filter_map(|u| u.key().map(String::from))
            .collect()
    }

    /// Whether an upload under `prefix` has a stored part: cairn then holds its id (a
    /// signal during CreateMultipartUpload itself is a narrower case than this test's).
    pub fn upload_has_parts(&self, prefix: &str) -> bool {
        let sdk = self.admin.sdk();
        self.rt.block_on(async {
            let out = sdk
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(prefix)
                .send()
                .await
                .unwrap_or_else(|e| panic!("list multipart uploads: {e:?}"));
            for u in out.uploads() {
                let (Some(key), Some(id)) = (u.key(), u.upload_id()) else {
                    continue;
                };
                let r = sdk
                    .list_parts()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await;
                let has_parts = match r {
                    Ok(parts) => !parts.parts().is_empty(),
                    // moto names the root element ListPartsResponse, which the SDK refuses;
                    // the 200's body still lists the parts.
                    Err(e) => match e.raw_response() {
                        Some(raw) if raw.status().as_u16() == 200 => raw
                            .body()
                            .bytes()
                            .is_some_and(|b| String::from_utf8_lossy(b).contains("<Part>")),
                        _ => panic!("list parts: {e:?}"),
                    },
                };
                if has_parts {
                    return true;
                }
            }
            false
        })
    }

    /// The keys under `prefix/`, in full.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let sdk = self.admin.sdk();
        self.rt.block_on(async {
            let mut out = Vec::new();
            let mut pages = sdk
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(format!("{prefix}/"))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.unwrap_or_else(|e| panic!("list objects: {e:?}"));
                out.extend(
                    page.contents()
                        .iter()
                        .filter_map(|o| o.key().map(String::from)),
                );
            }
            out
        })
    }

    /// Every object under `prefix/`, by key relative to it, with its bytes as stored.
    pub fn objects(&self, prefix: &str) -> BTreeMap<String, Vec<u8>> {
        let sdk = self.admin.sdk();
        let keys = self.keys(prefix);
        self.rt.block_on(async {
            let mut out = BTreeMap::new();
            for key in keys {
                let body = sdk
                    .get_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("get {key}: {e:?}"))
                    .body
                    .collect()
                    .await
                    .unwrap()
                    .to_vec();
                out.insert(key[prefix.len() + 1..].to_string(), body);
            }
            out
        })
    }
}
