import Foundation
import TestSupport

/// Every documented setting of registry-image-resource and oci-build-task, with where it is
/// documented, what Slipway does with it and the probe that shows it.
///
/// Sources read (concourse/registry-image-resource and concourse/oci-build-task, main):
/// - registry-image `README.md` ("Source Configuration", "`get` Step `params`",
///   "`put` Steps `params`") and `types.go` (`Source`, `GetParams`, `PutParams`);
/// - oci-build-task `README.md` ("`params`") and `types.go` (`Config`), read by
///   `cmd/build/main.go` with envconfig, which also takes a field's own name
///   (`BuildArgs` → `BUILD_ARGS`), so the undocumented list forms count as settings too.
extension AnchorSetting {
    static let registryImageReadme = "registry-image README, Source Configuration"
    static let registryImageTypes = "registry-image types.go, Source"
    static let getParams = "registry-image README, `get` Step `params`"
    static let putParams = "registry-image README, `put` Steps `params`"
    static let ociParams = "oci-build-task README, `params`"
    static let ociTypes = "oci-build-task types.go, Config (envconfig field name)"

    static let all: [AnchorSetting] = registryImageSource + registryImageGet + registryImagePut + ociBuildTask

    static let registryImageSource: [AnchorSetting] =
        [
            AnchorSetting(
                .registryImageSource, "repository", from: registryImageReadme,
                .same(provenBy: "CheckImageModeTests.semverModeOrdersDedupesAndResumesFromTheCursor"),
                probe: .check(source: "")),
            AnchorSetting(
                .registryImageSource, "tag", from: registryImageReadme,
                .same(provenBy: "CheckImageModeTests.tagModeFollowsTheTagWithCursorSemantics"),
                probe: .check(source: #""tag":"latest""#)),
            AnchorSetting(
                .registryImageSource, "username", from: registryImageReadme,
                .same(provenBy: "CheckImageModeTests.aWrongPasswordIsNamedButNeverShown"),
                probe: .check(source: #""username":"someone","password":"secret""#)),
            AnchorSetting(
                .registryImageSource, "password", from: registryImageReadme,
                .same(provenBy: "HostileInputCredentialTests.registryPasswordsNeverReachOutput"),
                probe: .check(source: #""username":"someone","password":"secret""#)),
            AnchorSetting(
                .registryImageSource, "insecure", from: registryImageReadme,
                .same(provenBy: "HostileInputCredentialTests.tlsIsVerifiedUnlessInsecure"),
                probe: .check(source: #""insecure":true"#)),
            AnchorSetting(
                .registryImageSource, "ca_certs", from: registryImageReadme,
                .same(provenBy: "HostileInputCredentialTests.tlsIsVerifiedUnlessInsecure"),
                probe: .custom { world in
                    let certificates = try TestCertificates.generate(in: try world.scratch("ca"))
                    return try world.check(#""ca_certs":[\#(jsonString(certificates.caCertificatePEM))]"#)
                }),
            AnchorSetting(
                .registryImageSource, "debug", from: registryImageReadme,
                .same(provenBy: "HostileInputCredentialTests.registryPasswordsNeverReachOutput"),
                probe: .check(source: #""debug":true"#)),
            AnchorSetting(
                .registryImageSource, "variant", from: registryImageReadme,
                .same(provenBy: "OutImageModeTests.variantSuffixesTheVersionTagAndCheckFindsThePutsVersion"),
                probe: .check(source: #""variant":"alpine""#)),
            AnchorSetting(
                .registryImageSource, "semver_constraint", from: registryImageReadme,
                .same(provenBy: "RegistryImageKeysTests.aPrereleaseConstraintReturnsPrereleases"),
                note: "Masterminds v3 constraint rules, prereleases included",
                probe: .check(source: #""semver_constraint":">= 1.0.0""#)),
            AnchorSetting(
                .registryImageSource, "pre_releases", from: registryImageReadme,
                .same(provenBy: "SemverSelectionTests.prereleasesAndVariants"),
                probe: .check(source: #""pre_releases":true"#)),
            AnchorSetting(
                .registryImageSource, "pre_release_prefixes", from: registryImageReadme,
                .same(provenBy: "PreReleasePrefixTests.extraPrefixesAddToTheBuiltInOnes"),
                probe: .check(source: #""pre_releases":true,"pre_release_prefixes":["rc"]"#)),
            AnchorSetting(
                .registryImageSource, "tag (a number)", from: registryImageTypes,
                .same(provenBy: "RegistryImageKeysTests.aNumericTagIsTheTagOfItsDigits"),
                probe: .check(source: #""tag":1"#)),
            AnchorSetting(
                .registryImageSource, "platform", from: registryImageReadme,
                .same(provenBy: "SourceImageKeysTests.platformDefaultsAreTheRunningMachines"),
                note: "`variant` may be added",
                probe: .check(source: #""tag":"latest","platform":{"architecture":"amd64"}"#)),
            AnchorSetting(
                .registryImageSource, "tag_regex", from: registryImageReadme,
                .same(provenBy: "RegistryImageKeysTests.tagRegexListsMatchingTagsInTheRegistrysOrder"),
                note: "ICU syntax: RE2's `(?P<name>…)` is `(?<name>…)`", probe: .check(source: #""tag_regex":"^1\\.""#)),
            AnchorSetting(
                .registryImageSource, "created_at_sort", from: registryImageReadme,
                .same(provenBy: "RegistryImageKeysTests.tagRegexListsMatchingTagsInTheRegistrysOrder"),
                probe: .check(source: #""tag_regex":".*","created_at_sort":true"#)),
            AnchorSetting(
                .registryImageSource, "label_regex", from: registryImageReadme,
                .same(provenBy: "RegistryImageKeysTests.labelsAndAnnotationsBecomeGetMetadata"),
                probe: .get(source: #""label_regex":"^org\\.opencontainers\\.""#, params: #""skip_download":true"#)),
            AnchorSetting(
                .registryImageSource, "annotation_regex", from: registryImageReadme,
                .same(provenBy: "RegistryImageKeysTests.labelsAndAnnotationsBecomeGetMetadata"),
                probe: .get(source: #""annotation_regex":"^com\\.example\\.""#, params: #""skip_download":true"#)),
            AnchorSetting(
                .registryImageSource, "registry_mirror", from: registryImageReadme,
                .same(
                    provenBy:
                        "RegistryImageKeysTests.aMirrorWithoutTheImageFallsBackToDockerHubWithTheOriginsCredentials"),
                note: "for Docker Hub repositories, as registry-image; for another registry it says it reads directly",
                probe: .custom { try $0.check(#""registry_mirror":{"host":"\#($0.registry.host)"}"#) }),
            AnchorSetting(
                .registryImageSource, "content_trust", from: registryImageReadme,
                .refused(because: "Docker Content Trust (Notary v1) is retired"),
                note: "use `sign` and `verify` (cosign-compatible signatures) instead",
                probe: .check(
                    source:
                        #""content_trust":{"server":"https://notary.example","repository_key_id":"k","repository_key":"KEY","repository_passphrase":"p"}"#
                )),
        ] + cloud

    static let ecr = "ECRLoginTests"
    static let acr = "ACRLoginTests"

    /// ECR and ACR: played through the loopback fakes (`CompatibilityWorld.aws`, `.azure`).
    static let cloud: [AnchorSetting] = [
        AnchorSetting(
            .registryImageSource, "aws_access_key_id", from: registryImageReadme,
            .same(provenBy: "\(ecr).sourceKeysPushCheckAndGetThroughTheBuiltBinary"),
            probe: .custom { try $0.checkThroughECR("") }),
        AnchorSetting(
            .registryImageSource, "aws_secret_access_key", from: registryImageReadme,
            .same(provenBy: "\(ecr).aWrongSecretFailsInOneLineWithoutTheSecret"),
            probe: .custom { try $0.checkThroughECR("") }),
        AnchorSetting(
            .registryImageSource, "aws_session_token", from: registryImageReadme,
            .same(provenBy: "\(ecr).workerEnvironmentCredentialsAreUsedWhenTheSourceHasNone"),
            probe: .custom { try $0.checkThroughECR(#""aws_session_token":"compat-session""#) }),
        AnchorSetting(
            .registryImageSource, "aws_region", from: registryImageReadme,
            .same(provenBy: "\(ecr).aBareRepositoryIsInTheRegistryECRNames"),
            probe: .custom { try $0.checkThroughECR("") }),
        AnchorSetting(
            .registryImageSource, "aws_role_arn", from: registryImageReadme,
            .same(provenBy: "\(ecr).roleChainSignsEachHopWithThePreviousHopsCredentials"),
            probe: .custom { try $0.checkThroughECR(#""aws_role_arn":"\#(CompatibilityWorld.awsRoles[0])""#) }),
        AnchorSetting(
            .registryImageSource, "aws_role_arns", from: registryImageReadme,
            .same(provenBy: "\(ecr).roleChainSignsEachHopWithThePreviousHopsCredentials"),
            probe: .custom {
                try $0.checkThroughECR(
                    #""aws_role_arns":[\#(CompatibilityWorld.awsRoles.map(jsonString).joined(separator: ","))]"#)
            }),
        AnchorSetting(
            .registryImageSource, "aws_account_id", from: registryImageReadme,
            .same(provenBy: "CloudSourceTests.aBareECRRepositoryGetsTheAccountsRegistryHost"),
            probe: .reaches(host: "123456789012.dkr.ecr.us-east-1.amazonaws.com") {
                try $0.checkThroughECR(#""aws_account_id":"123456789012""#, repository: "compat/app")
            }),
        AnchorSetting(
            .registryImageSource, "aws_ecr_registry_id", from: registryImageTypes,
            .same(provenBy: "CloudSourceTests.aBareECRRepositoryGetsTheAccountsRegistryHost"),
            note: "used, where registry-image ignores it with a deprecation warning",
            probe: .reaches(host: "210987654321.dkr.ecr.us-east-1.amazonaws.com") {
                try $0.checkThroughECR(#""aws_ecr_registry_id":"210987654321""#, repository: "compat/app")
            }),
        AnchorSetting(
            .registryImageSource, "azure_acr", from: registryImageReadme,
            .same(provenBy: "\(acr).managedIdentityTokenIsExchangedForARefreshToken"),
            probe: .custom { try $0.checkThroughACR("") }),
        AnchorSetting(
            .registryImageSource, "azure_client_id", from: registryImageReadme,
            .same(provenBy: "\(acr).managedIdentityTokenIsExchangedForARefreshToken"),
            probe: .custom { try $0.checkThroughACR(#""azure_client_id":"\#(CompatibilityWorld.azureClient)""#) }),
        AnchorSetting(
            .registryImageSource, "azure_tenant_id", from: registryImageReadme,
            .same(provenBy: "\(acr).managedIdentityTokenIsExchangedForARefreshToken"),
            probe: .custom { try $0.checkThroughACR("") }),
        AnchorSetting(
            .registryImageSource, "azure_environment", from: registryImageReadme,
            .same(provenBy: "\(acr).theCloudDecidesTheTokenAudienceAndTheTenantDefaultsToCommon"),
            probe: .custom { try $0.checkThroughACR(#""azure_environment":"AzurePublic""#) }),
    ]

    static let registryImageGet: [AnchorSetting] = [
        AnchorSetting(
            .registryImageGet, "format", from: getParams,
            .same(provenBy: "InImageModeTests.ociLayoutFormatIsTheWholeImage"),
            probe: .get(params: #""format":"oci-layout""#)),
        AnchorSetting(
            .registryImageGet, "platform", from: getParams,
            .same(provenBy: "InImageModeTests.rootfsFormatUnpacksThePlatformAskedWithMetadata"),
            probe: .get(params: #""format":"oci","platform":{"os":"linux","architecture":"amd64"}"#)),
        AnchorSetting(
            .registryImageGet, "skip_download", from: getParams,
            .same(provenBy: "InImageModeTests.skipAutoAndRequired"), probe: .get(params: #""skip_download":true"#)),
    ]

    static let registryImagePut: [AnchorSetting] = [
        AnchorSetting(
            .registryImagePut, "image", from: putParams,
            .same(provenBy: "OutImageModeTests.pushesEveryInputFormAndCheckSeesTheSameVersion"),
            probe: .put(source: #""tag":"latest""#, params: #""image":"image""#)),
        AnchorSetting(
            .registryImagePut, "version", from: putParams,
            .same(provenBy: "OutImageModeTests.versionAliasesAndAdditionalTags"),
            probe: .put(params: #""image":"image","version":"1.2.3""#)),
        AnchorSetting(
            .registryImagePut, "bump_aliases", from: putParams,
            .same(provenBy: "OutImageModeTests.versionAliasesAndAdditionalTags"),
            probe: .put(params: #""image":"image","version":"1.2.3","bump_aliases":true"#)),
        AnchorSetting(
            .registryImagePut, "additional_tags", from: putParams,
            .same(provenBy: "OutImageModeTests.versionAliasesAndAdditionalTags"),
            probe: .put(source: #""tag":"latest""#, params: #""image":"image","additional_tags":"tags""#)),
        AnchorSetting(
            .registryImagePut, "tag_prefix", from: putParams,
            .same(provenBy: "OutImageModeTests.versionAliasesAndAdditionalTags"),
            probe: .put(
                source: #""tag":"latest""#, params: #""image":"image","additional_tags":"tags","tag_prefix":"v""#)),
    ]

    static let ociBuildTask: [AnchorSetting] = [
        AnchorSetting(
            .ociBuildTask, "CONTEXT", from: ociParams,
            .same(provenBy: "ImageBuildTests.buildsLabelsAndWritesOutputsReadBySkopeoAndUmoci"), probe: .build([:])),
        AnchorSetting(
            .ociBuildTask, "DOCKERFILE", from: ociParams,
            .same(provenBy: "BuildConfigurationTests.theEnvironmentAsAConcourseTaskSetsIt"),
            probe: .custom { world in
                try world.build(["DOCKERFILE": world.context.appendingPathComponent("Dockerfile").path])
            }),
        AnchorSetting(
            .ociBuildTask, "TARGET", from: ociParams,
            .same(provenBy: "ImageBuildTests.buildsLabelsAndWritesOutputsReadBySkopeoAndUmoci"),
            probe: .build(["TARGET": "base"])),
        AnchorSetting(
            .ociBuildTask, "TARGET_FILE", from: ociParams,
            .same(provenBy: "BuildConfigurationTests.theEnvironmentAsAConcourseTaskSetsIt"),
            probe: .custom { world in
                let file = try world.scratch("target").appendingPathComponent("target")
                try Data("base\n".utf8).write(to: file)
                return try world.build(["TARGET_FILE": file.path])
            }),
        AnchorSetting(
            .ociBuildTask, "BUILD_ARG_*", from: ociParams,
            .same(provenBy: "ImageBuildTests.buildsLabelsAndWritesOutputsReadBySkopeoAndUmoci"),
            probe: .build(["BUILD_ARG_GREETING": "hi"])),
        AnchorSetting(
            .ociBuildTask, "BUILD_ARGS_FILE", from: ociParams,
            .same(provenBy: "BuildConfigurationTests.theEnvironmentAsAConcourseTaskSetsIt"),
            probe: .custom { world in
                let file = try world.scratch("args").appendingPathComponent("args")
                try Data("GREETING=hi\n".utf8).write(to: file)
                return try world.build(["BUILD_ARGS_FILE": file.path])
            }),
        AnchorSetting(
            .ociBuildTask, "LABEL_*", from: ociParams,
            .same(provenBy: "ImageBuildTests.buildsLabelsAndWritesOutputsReadBySkopeoAndUmoci"),
            probe: .build(["LABEL_team": "compat"])),
        AnchorSetting(
            .ociBuildTask, "LABELS_FILE", from: ociParams,
            .same(provenBy: "BuildConfigurationTests.theEnvironmentAsAConcourseTaskSetsIt"),
            probe: .custom { world in
                let file = try world.scratch("labels").appendingPathComponent("labels")
                try Data("team=compat\n".utf8).write(to: file)
                return try world.build(["LABELS_FILE": file.path])
            }),
        AnchorSetting(
            .ociBuildTask, "IMAGE_ARG_*", from: ociParams,
            .same(provenBy: "ImageBuildTests.imageArgTakesTheBaseFromAGetDirectoryWithoutARegistry"),
            probe: .custom { world in
                let context = try world.scratch("image-arg")
                try Data("ARG BASE\nFROM ${BASE}\nCOPY Dockerfile /Dockerfile\n".utf8).write(
                    to: context.appendingPathComponent("Dockerfile"))
                return try world.build(["CONTEXT": context.path, "IMAGE_ARG_BASE": world.layout.path])
            }),
        AnchorSetting(
            .ociBuildTask, "IMAGE_PLATFORM", from: ociParams,
            .same(provenBy: "ImageBuildTests.severalPlatformsGiveAnIndexThatOutPushesAndInReadsPerPlatform"),
            probe: .build(["IMAGE_PLATFORM": "linux/arm64"])),
        AnchorSetting(
            .ociBuildTask, "UNPACK_ROOTFS", from: ociParams,
            .same(provenBy: "ImageBuildTests.unpackRootfsAndOutputOCIWriteOCIBuildTaskLayout"),
            probe: .build(["UNPACK_ROOTFS": "true"])),
        AnchorSetting(
            .ociBuildTask, "OUTPUT_OCI", from: ociParams,
            .same(provenBy: "ImageBuildTests.unpackRootfsAndOutputOCIWriteOCIBuildTaskLayout"),
            probe: .build(["OUTPUT_OCI": "true"])),
        AnchorSetting(
            .ociBuildTask, "ADDITIONAL_TARGETS", from: ociParams,
            .same(provenBy: "ImageBuildTests.additionalTargetsAreBuiltEachIntoItsOwnDirectory"),
            probe: .build(["ADDITIONAL_TARGETS": "base"])),
        AnchorSetting(
            .ociBuildTask, "BUILDKIT_SECRET_*", from: ociParams,
            .same(provenBy: "ImageBuildTests.secretsReachRunButNoLayerConfigManifestOrLogAndAddHostsReachEtcHosts"),
            probe: .custom { world in
                let file = try world.scratch("secret").appendingPathComponent("token")
                try Data("compat-secret\n".utf8).write(to: file)
                return try world.build(["BUILDKIT_SECRET_token": file.path])
            }),
        AnchorSetting(
            .ociBuildTask, "BUILDKIT_SECRETTEXT_*", from: ociParams,
            .same(provenBy: "ImageBuildTests.secretsReachRunButNoLayerConfigManifestOrLogAndAddHostsReachEtcHosts"),
            probe: .build(["BUILDKIT_SECRETTEXT_token": "compat-secret"])),
        AnchorSetting(
            .ociBuildTask, "BUILDKIT_SSH", from: ociParams,
            .same(provenBy: "ImageBuildTests.anSSHAgentIsForwardedToRun"),
            probe: .custom { world in
                let key = try world.scratch("ssh").appendingPathComponent("id_ed25519")
                try runProcess("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key.path]).checked()
                return try world.build(["BUILDKIT_SSH": "default=\(key.path)"])
            }),
        AnchorSetting(
            .ociBuildTask, "BUILDKIT_ADD_HOSTS", from: ociParams,
            .same(provenBy: "ImageBuildTests.secretsReachRunButNoLayerConfigManifestOrLogAndAddHostsReachEtcHosts"),
            probe: .build(["BUILDKIT_ADD_HOSTS": "compat.internal=127.0.0.1"])),
        AnchorSetting(
            .ociBuildTask, "REGISTRY_MIRRORS", from: ociParams,
            .same(provenBy: "ImageBuildTests.aDockerHubMirrorServesTheBaseToTheAssemblerAndToBuildah"),
            probe: .custom { try $0.build(["REGISTRY_MIRRORS": $0.registry.host]) }),
        AnchorSetting(
            .ociBuildTask, "BUILDKIT_EXTRA_CONFIG", from: ociParams,
            .same(provenBy: "ImageBuildTests.aDockerHubMirrorServesTheBaseToTheAssemblerAndToBuildah"),
            note: "its `[registry.\"docker.io\"] mirrors`; any other content is refused, as the next row says",
            probe: .custom {
                try $0.build([
                    "BUILDKIT_EXTRA_CONFIG": "[registry.\"docker.io\"]\nmirrors = [\"\($0.registry.host)\"]\n"
                ])
            }),
        AnchorSetting(
            .ociBuildTask, "BUILDKIT_EXTRA_CONFIG (other than docker.io mirrors)", from: ociParams,
            .refused(because: "is not supported"),
            probe: .build(["BUILDKIT_EXTRA_CONFIG": "[worker.oci]\nmax-parallelism = 4\n"])),
        AnchorSetting(
            .ociBuildTask, "BUILD_ARGS", from: ociTypes,
            .same(provenBy: "OCIBuildTaskVariablesTests.outputsAndBuildKitSettingsAreRead"),
            probe: .build(["BUILD_ARGS": "GREETING=hi"])),
        AnchorSetting(
            .ociBuildTask, "LABELS", from: ociTypes,
            .same(provenBy: "OCIBuildTaskVariablesTests.outputsAndBuildKitSettingsAreRead"),
            probe: .build(["LABELS": "team=compat"])),
        AnchorSetting(
            .ociBuildTask, "IMAGE_ARGS", from: ociTypes,
            .same(provenBy: "OCIBuildTaskVariablesTests.outputsAndBuildKitSettingsAreRead"),
            probe: .custom { world in
                let context = try world.scratch("image-args")
                try Data("ARG BASE\nFROM ${BASE}\nCOPY Dockerfile /Dockerfile\n".utf8).write(
                    to: context.appendingPathComponent("Dockerfile"))
                return try world.build(["CONTEXT": context.path, "IMAGE_ARGS": "BASE=\(world.layout.path)"])
            }),
        AnchorSetting(
            .ociBuildTask, "DEBUG", from: ociTypes,
            .same(provenBy: "OCIBuildTaskVariablesTests.outputsAndBuildKitSettingsAreRead"),
            note: "logs the builder's command lines", probe: .build(["DEBUG": "true"])),
        AnchorSetting(
            .ociBuildTask, "BUILDKIT_SECRETS", from: ociTypes,
            .refused(because: "is not honoured"), probe: .build(["BUILDKIT_SECRETS": "token=/dev/null"])),
    ]
}

/// `text` as a JSON string literal.
func jsonString(_ text: String) -> String {
    String(decoding: try! JSONEncoder().encode(text), as: UTF8.self)
}
