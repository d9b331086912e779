//! The image part of the plan: an existing image, a known revision's own, or a build to push to
//! ECR, whose repository must exist and whose registry is the caller's account's.

use anyhow::{Context, Result, anyhow, bail};

use super::ImagePlan;
use crate::aws::{Aws, call_failed};
use crate::config::{Config, ImageSource};

/// What the run deploys as its image, from the inputs (with ECR's registry and repository checked
/// for a build).
pub(super) async fn image_plan(config: &Config, aws: &Aws) -> Result<ImagePlan> {
    Ok(match &config.image {
        ImageSource::Existing { uri, registry } => ImagePlan::Existing { uri: uri.clone(), registry: registry.clone() },
        ImageSource::AsRegistered => ImagePlan::AsRegistered { uri: String::new() },
        ImageSource::Build(b) => {
            let registry = match &b.registry {
                Some(host) => host.clone(),
                None => {
                    ecr_repository_exists(aws, &b.ecr_repository).await?;
                    ecr_registry(aws, &config.aws.region).await?
                }
            };
            ImagePlan::Build {
                context: b.context.clone(),
                dockerfile: b.dockerfile.clone(),
                target: b.target.clone(),
                platform: b.platform.clone(),
                build_arg_names: b.build_args.iter().map(|(k, _)| k.clone()).collect(),
                registry,
                repository: b.ecr_repository.clone(),
                tag: b.tag.clone(),
            }
        }
    })
}

/// ECR refuses pushes to a repository that does not exist: say so before anything is built.
async fn ecr_repository_exists(aws: &Aws, repository: &str) -> Result<()> {
    match aws.ecr.describe_repositories().repository_names(repository).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_repository_not_found_exception()) => bail!(
            "input `ecr-repository`: there is no ECR repository `{repository}` in this account and region: create it (aws ecr create-repository --repository-name {repository}) or fix the name"
        ),
        Err(e) => Err(call_failed("ECR DescribeRepositories", &e))
            .with_context(|| format!("could not look up the ECR repository `{repository}` (ecr:DescribeRepositories)")),
    }
}

/// ECR's registry host for the caller's account: `<account>.dkr.ecr.<region>.amazonaws.com`.
async fn ecr_registry(aws: &Aws, region: &str) -> Result<String> {
    let account = caller_account(aws).await?;
    let suffix = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
    Ok(format!("{account}.dkr.ecr.{region}.{suffix}"))
}

/// The account the credentials belong to (sts:GetCallerIdentity needs no permission).
pub(crate) async fn caller_account(aws: &Aws) -> Result<String> {
    let identity = aws
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| call_failed("STS GetCallerIdentity", &e))
        .context("could not find out the AWS account (sts:GetCallerIdentity): are AWS credentials configured?")?;
    identity.account().map(str::to_string).ok_or_else(|| anyhow!("sts:GetCallerIdentity returned no account"))
}
