//! The apply functions of the ACL commands: bootstrap, policy upsert and delete, token create
//! and delete. Called from [`SigilState::apply`]; each either changes the state and marks what
//! it touched, or changes nothing and returns a [`Rejection`].
//!
//! The leader validates policies and tokens before proposing; these functions check only what
//! depends on the state (bootstrap once, unique ids, a token's policies exist, the token kind's
//! invariants), so that every server refuses the same entries.

use sigil_acl::AclPolicy;
use sigil_types::{AclToken, CommandResponse, Rejection, RejectionKind, TokenKind};

use crate::apply::EntryPosition;
use crate::state::AclBootstrap;
use crate::{RecordKey, SigilState};

impl SigilState {
    pub(crate) fn apply_bootstrap_acl(
        &mut self,
        at: EntryPosition,
        token: &AclToken,
    ) -> Result<CommandResponse, Rejection> {
        if let Some(done) = &self.acl_bootstrap {
            let message = format!(
                "the ACL system was already bootstrapped at log index {}",
                done.log_index
            );
            return Err(Rejection::new(RejectionKind::FailedPrecondition, message));
        }
        if token.kind != TokenKind::Management {
            let message = "the bootstrap token must be a management token";
            return Err(Rejection::new(RejectionKind::FailedPrecondition, message));
        }
        self.apply_create_token(token)?;
        self.acl_bootstrap = Some(AclBootstrap {
            accessor_id: token.accessor_id,
            log_index: at.index,
        });
        self.dirty.insert(RecordKey::AclBootstrap);
        Ok(CommandResponse::Applied)
    }

    pub(crate) fn apply_upsert_policy(
        &mut self,
        policy: &AclPolicy,
    ) -> Result<CommandResponse, Rejection> {
        // The leader validated it; an entry that still fails would be a bug or a forged log,
        // and is refused rather than stored.
        if let Err(err) = policy.validate() {
            let message = format!("policy {:?} is invalid: {err}", policy.name);
            return Err(Rejection::new(RejectionKind::FailedPrecondition, message));
        }
        self.acl_policies
            .insert(policy.name.clone(), policy.clone());
        self.dirty.insert(RecordKey::AclPolicy(policy.name.clone()));
        Ok(CommandResponse::Applied)
    }

    pub(crate) fn apply_delete_policy(&mut self, name: &str) -> Result<CommandResponse, Rejection> {
        if self.acl_policies.remove(name).is_none() {
            let message = format!("ACL policy {name:?} does not exist");
            return Err(Rejection::new(RejectionKind::NotFound, message));
        }
        self.dirty.insert(RecordKey::AclPolicy(name.to_owned()));
        Ok(CommandResponse::Applied)
    }

    pub(crate) fn apply_create_token(
        &mut self,
        token: &AclToken,
    ) -> Result<CommandResponse, Rejection> {
        self.check_token(token)?;
        self.token_hashes
            .insert(token.secret_hash.clone(), token.accessor_id);
        self.acl_tokens.insert(token.accessor_id, token.clone());
        self.dirty.insert(RecordKey::AclToken(token.accessor_id));
        Ok(CommandResponse::Applied)
    }

    pub(crate) fn apply_delete_token(
        &mut self,
        accessor_id: &uuid::Uuid,
    ) -> Result<CommandResponse, Rejection> {
        let Some(token) = self.acl_tokens.remove(accessor_id) else {
            let message = format!("ACL token {accessor_id} does not exist");
            return Err(Rejection::new(RejectionKind::NotFound, message));
        };
        self.token_hashes.remove(&token.secret_hash);
        self.dirty.insert(RecordKey::AclToken(*accessor_id));
        Ok(CommandResponse::Applied)
    }

    /// The state-dependent checks of a new token; none of them changes anything.
    fn check_token(&self, token: &AclToken) -> Result<(), Rejection> {
        let precondition =
            |message: String| Err(Rejection::new(RejectionKind::FailedPrecondition, message));
        // Ids and secrets are random UUIDs chosen by the leader; a collision means a replayed
        // or forged entry, and must never let one secret resolve to two tokens.
        if self.acl_tokens.contains_key(&token.accessor_id) {
            let message = format!("ACL token {} already exists", token.accessor_id);
            return Err(Rejection::new(RejectionKind::Aborted, message));
        }
        if self.token_hashes.contains_key(&token.secret_hash) {
            let message = "another ACL token has the same secret".to_owned();
            return Err(Rejection::new(RejectionKind::Aborted, message));
        }
        match token.kind {
            TokenKind::Management if !token.policies.is_empty() => {
                return precondition("a management token has no policies".into());
            }
            TokenKind::Client if token.policies.is_empty() => {
                return precondition("a client token needs at least one policy".into());
            }
            _ => {}
        }
        if let Some(missing) = token
            .policies
            .iter()
            .find(|name| !self.acl_policies.contains_key(*name))
        {
            let message = format!("ACL policy {missing:?} does not exist");
            return Err(Rejection::new(RejectionKind::NotFound, message));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use sigil_acl::{JobAcl, PolicyRules};
    use sigil_types::{Command, SecretHash};

    use super::*;

    const SECRET: &str = "6f1c1a52-4a8e-4f55-9c55-0f2d4c1e9a77";

    fn at(index: u64) -> EntryPosition {
        EntryPosition {
            index,
            term: 1,
            leader: 1,
        }
    }

    fn token(kind: TokenKind, secret: &str, policies: &[&str]) -> AclToken {
        AclToken {
            accessor_id: uuid::Uuid::new_v4(),
            secret_hash: SecretHash::of(secret),
            name: "test".into(),
            kind,
            policies: policies.iter().map(|p| p.to_string()).collect(),
            create_time_ms: 1_000,
        }
    }

    fn policy(name: &str) -> AclPolicy {
        let rules = PolicyRules::parse(r#"namespace "default" { policy = "write" }"#)
            .expect("the rules parse");
        let job_acl = JobAcl {
            namespace: "default".into(),
            job: Some("web".into()),
            group: None,
            task: None,
        };
        AclPolicy::new(name, "", rules, Some(job_acl)).expect("the policy is valid")
    }

    fn rejected(response: CommandResponse) -> Rejection {
        match response {
            CommandResponse::Rejected(rejection) => rejection,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    /// The second bootstrap is refused and leaves the first token as the only one, so racing
    /// bootstraps on two leaders can never both hand out a management token.
    #[test]
    fn the_acl_system_bootstraps_exactly_once() {
        let mut state = SigilState::default();
        let first = token(TokenKind::Management, SECRET, &[]);
        let response = state.apply(at(5), &Command::BootstrapAcl(Box::new(first.clone())));
        assert_eq!(
            response,
            CommandResponse::Applied,
            "the first bootstrap applies"
        );
        assert_eq!(
            state.acl_bootstrap().map(|b| (b.accessor_id, b.log_index)),
            Some((first.accessor_id, 5)),
            "the bootstrap is recorded with its index"
        );

        let second = token(TokenKind::Management, "another secret", &[]);
        let rejection = rejected(state.apply(at(6), &Command::BootstrapAcl(Box::new(second))));
        assert_eq!(
            rejection.kind,
            RejectionKind::FailedPrecondition,
            "a second bootstrap is a failed precondition"
        );
        assert_eq!(state.acl_tokens().count(), 1, "only the first token exists");
        assert_eq!(
            state.take_dirty().len(),
            2,
            "only the first bootstrap touched records (token and marker)"
        );
    }

    /// Records and snapshots carry the hash and never the secret, and a state rebuilt from its
    /// records finds the token by the hash of the secret.
    #[test]
    fn tokens_are_stored_as_hashes_and_found_by_the_hash_of_the_secret() {
        let mut state = SigilState::default();
        let bootstrap = token(TokenKind::Management, SECRET, &[]);
        state.apply(at(1), &Command::BootstrapAcl(Box::new(bootstrap.clone())));

        let records: Vec<(String, Vec<u8>)> = state
            .all_records()
            .iter()
            .filter_map(|key| Some((key.encode(), state.encode_record(key)?)))
            .collect();
        for (key, value) in &records {
            let text = String::from_utf8_lossy(value);
            assert!(
                !text.contains(SECRET),
                "record {key} holds no secret: {text}"
            );
        }
        let snapshot = serde_json::to_string(&state).expect("the state serializes");
        assert!(!snapshot.contains(SECRET), "the snapshot holds no secret");

        let reloaded =
            SigilState::from_records(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .expect("the records load");
        let found = reloaded.acl_token_by_hash(&SecretHash::of(SECRET));
        assert_eq!(
            found,
            Some(&bootstrap),
            "the reloaded state finds the token by hash"
        );
        assert_eq!(
            reloaded.acl_token_by_hash(&SecretHash::of("wrong")),
            None,
            "a wrong secret finds nothing"
        );
        assert!(
            reloaded.acl_bootstrap().is_some(),
            "the bootstrap marker reloads"
        );
    }

    /// A deleted token's secret stops resolving and its record is removed; deleting it again,
    /// or deleting an unknown policy, is refused without changes.
    #[test]
    fn deleting_a_token_stops_its_secret_and_unknown_deletes_change_nothing() {
        let mut state = SigilState::default();
        state.apply(at(1), &Command::UpsertPolicy(Box::new(policy("deploy"))));
        let client = token(TokenKind::Client, SECRET, &["deploy"]);
        let created = state.apply(at(2), &Command::CreateToken(Box::new(client.clone())));
        assert_eq!(
            created,
            CommandResponse::Applied,
            "the client token is created"
        );
        state.take_dirty();

        let delete = Command::DeleteToken {
            accessor_id: client.accessor_id,
        };
        assert_eq!(
            state.apply(at(3), &delete),
            CommandResponse::Applied,
            "delete applies"
        );
        assert_eq!(
            state.acl_token_by_hash(&SecretHash::of(SECRET)),
            None,
            "the secret no longer resolves"
        );
        let dirty = state.take_dirty();
        let key = RecordKey::AclToken(client.accessor_id);
        assert!(dirty.contains(&key), "the token's record is rewritten");
        assert_eq!(
            state.encode_record(&key),
            None,
            "and so removed from the store"
        );

        let again = rejected(state.apply(at(4), &delete));
        assert_eq!(
            again.kind,
            RejectionKind::NotFound,
            "a second delete is not found"
        );
        let unknown = Command::DeletePolicy {
            name: "nope".into(),
        };
        let rejection = rejected(state.apply(at(5), &unknown));
        assert_eq!(rejection.kind, RejectionKind::NotFound, "unknown policy");
        assert!(
            state.take_dirty().is_empty(),
            "refused deletes touch no record"
        );
        assert!(
            state.acl_policy("deploy").is_some(),
            "the policy is still there"
        );
    }

    /// A client token naming a missing policy, a client token with no policy, and a token
    /// reusing an accessor id or secret are all refused without changes.
    #[test]
    fn tokens_that_break_an_invariant_are_refused_without_changes() {
        let mut state = SigilState::default();
        state.apply(at(1), &Command::UpsertPolicy(Box::new(policy("deploy"))));
        let good = token(TokenKind::Client, SECRET, &["deploy"]);
        state.apply(at(2), &Command::CreateToken(Box::new(good.clone())));
        state.take_dirty();

        let missing = token(TokenKind::Client, "s1", &["deploy", "missing"]);
        let none = token(TokenKind::Client, "s2", &[]);
        let same_secret = token(TokenKind::Management, SECRET, &[]);
        let same_id = AclToken {
            secret_hash: SecretHash::of("s3"),
            ..good.clone()
        };
        let cases = [
            (missing, RejectionKind::NotFound),
            (none, RejectionKind::FailedPrecondition),
            (same_secret, RejectionKind::Aborted),
            (same_id, RejectionKind::Aborted),
        ];
        for (bad, kind) in cases {
            let name = format!("{bad:?}");
            let rejection = rejected(state.apply(at(3), &Command::CreateToken(Box::new(bad))));
            assert_eq!(rejection.kind, kind, "refusal kind of {name}");
        }
        assert!(
            state.take_dirty().is_empty(),
            "no refused token touched a record"
        );
        assert_eq!(state.acl_tokens().count(), 1, "only the good token exists");
    }
}
