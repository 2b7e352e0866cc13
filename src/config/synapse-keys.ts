/**
 * Which top-level keys Synapse knows, so the loader can tell a typo (warn)
 * from a Synapse setting Axon does not act on (one info line).
 *
 * SYNAPSE_KEYS is every top-level option in Synapse's configuration manual
 * (docs/usage/configuration/config_documentation.md, generated from
 * schema/synapse-config.schema.yaml), plus keys Synapse's config classes still
 * read without documenting them (legacy spellings such as `use_presence`,
 * `bind_port`, `rc_messages_per_second`, `experimental_features`), plus keys
 * older generated homeserver.yaml files carry (`tls_fingerprints`, `acme`,
 * `enable_group_creation`, ...) that current Synapse ignores without complaint.
 * Collected from element-hq/synapse at Synapse 1.157.
 */
export const SYNAPSE_KEYS: ReadonlySet<string> = new Set([
  'access_token_lifetime', 'account_threepid_delegates', 'account_validity', 'acme',
  'admin_contact', 'alias_creation_rules', 'allow_device_name_lookup_over_federation', 'allow_guest_access',
  'allow_per_room_profiles', 'allow_profile_lookup_over_federation', 'allow_public_rooms_over_federation', 'allow_public_rooms_without_auth',
  'allow_underscore_prefixed_registration', 'allowed_avatar_mimetypes', 'allowed_local_3pids', 'app_service_config_files',
  'auto_accept_invites', 'auto_join_mxid_localpart', 'auto_join_rooms', 'auto_join_rooms_for_guests',
  'autocreate_auto_join_room_preset', 'autocreate_auto_join_rooms', 'autocreate_auto_join_rooms_federated', 'background_updates',
  'backup_media_store_path', 'bcrypt_rounds', 'bind_host', 'bind_port',
  'block_non_admin_invites', 'caches', 'captcha_bypass_secret', 'cas_config',
  'cpu_affinity', 'daemonize', 'database', 'database_path',
  'databases', 'default_identity_server', 'default_power_level_content_override', 'default_room_version',
  'delete_stale_devices_after', 'disable_msisdn_registration', 'disable_registration', 'dont_notify_new_devices_for',
  'dummy_events_threshold', 'dynamic_thumbnails', 'email', 'enable_3pid_changes',
  'enable_3pid_lookup', 'enable_authenticated_media', 'enable_ephemeral_messages', 'enable_group_creation',
  'enable_local_media_storage', 'enable_media_repo', 'enable_metrics', 'enable_registration',
  'enable_registration_captcha', 'enable_registration_token_3pid_bypass', 'enable_registration_without_verification', 'enable_room_list_search',
  'enable_search', 'enable_set_avatar_url', 'enable_set_displayname', 'encryption_enabled_by_default_for_room_type',
  'event_cache_size', 'exclude_rooms_from_presence', 'exclude_rooms_from_sync', 'experimental_features',
  'expire_access_token', 'extra_well_known_client_content', 'federation', 'federation_certificate_verification_whitelist',
  'federation_client_minimum_tls_version', 'federation_custom_ca_list', 'federation_domain_whitelist', 'federation_ip_range_blacklist',
  'federation_metrics_domains', 'federation_rc_concurrent', 'federation_rc_reject_limit', 'federation_rc_sleep_delay',
  'federation_rc_sleep_limit', 'federation_rc_window_size', 'federation_rr_transactions_per_room_per_second', 'federation_sender_instances',
  'federation_verify_certificates', 'federation_whitelist_endpoint_enabled', 'filter_timeline_limit', 'forget_rooms_on_leave',
  'forgotten_room_retention_period', 'form_secret', 'form_secret_path', 'gc_min_interval',
  'gc_thresholds', 'group_creation_prefix', 'gzip_responses', 'hs_disabled',
  'hs_disabled_limit_type', 'hs_disabled_message', 'http_proxy', 'https_proxy',
  'include_profile_data_on_invite', 'inhibit_user_in_use_error', 'instance_map', 'invite_3pid_guest',
  'ip_range_blacklist', 'ip_range_whitelist', 'jwt_config', 'key_refresh_interval',
  'key_server_signing_keys_path', 'ldap_config', 'limit_profile_requests_to_users_who_share_rooms', 'limit_remote_rooms',
  'limit_usage_by_mau', 'listeners', 'log_config', 'log_file',
  'login_via_existing_session', 'macaroon_secret_key', 'macaroon_secret_key_path', 'manhole',
  'manhole_settings', 'matrix_authentication_service', 'matrix_rtc', 'mau_appservice_trial_days',
  'mau_limit_alerting', 'mau_limit_reserved_threepids', 'mau_stats_only', 'mau_trial_days',
  'max_avatar_size', 'max_event_delay_duration', 'max_image_pixels', 'max_mau_value',
  'max_pending_media_uploads', 'max_spider_size', 'max_upload_size', 'media_instance_running_background_jobs',
  'media_retention', 'media_storage_providers', 'media_store_path', 'media_upload_limits',
  'metrics_bind_host', 'metrics_flags', 'metrics_port', 'modules',
  'next_link_domain_whitelist', 'no_proxy_hosts', 'no_redirect_stdio', 'no_tls',
  'nonrefreshable_access_token_lifetime', 'notify_appservices_from_worker', 'oembed', 'oidc_config',
  'oidc_providers', 'old_signing_keys', 'opentracing', 'outbound_federation_restricted_to',
  'password_config', 'password_providers', 'perspectives', 'pid_file',
  'presence', 'prevent_media_downloads_from', 'print_pidfile', 'public_baseurl',
  'push', 'pusher_instances', 'rc_3pid_validation', 'rc_admin_redaction',
  'rc_delayed_event_mgmt', 'rc_federation', 'rc_invites', 'rc_joins',
  'rc_joins_per_room', 'rc_key_requests', 'rc_login', 'rc_media_create', 'rc_message',
  'rc_message_burst_count', 'rc_messages_per_second', 'rc_presence', 'rc_registration',
  'rc_registration_token_validity', 'rc_reports', 'rc_room_creation', 'rc_third_party_invite',
  'rc_user_directory', 'recaptcha_private_key', 'recaptcha_private_key_path', 'recaptcha_public_key',
  'recaptcha_public_key_path', 'recaptcha_siteverify_api', 'redaction_retention_period', 'redis',
  'refresh_token_lifetime', 'refreshable_access_token_lifetime', 'registration_requires_token', 'registration_shared_secret',
  'registration_shared_secret_path', 'registrations_require_3pid', 'remote_media_download_burst_count', 'remote_media_download_per_second',
  'replication_torture_level', 'report_stats', 'report_stats_endpoint', 'request_token_inhibit_3pid_errors',
  'require_auth_for_profile_requests', 'require_membership_for_aliases', 'restrict_public_rooms_to_local_users', 'retention',
  'room_invite_state_types', 'room_list_publication_rules', 'room_prejoin_state', 'run_background_tasks_on',
  'saml2_config', 'send_federation', 'sentry', 'serve_server_wellknown',
  'server_context', 'server_name', 'server_notices', 'session_lifetime',
  'signing_key', 'signing_key_path', 'soft_file_limit', 'spam_checker',
  'sso', 'start_pushers', 'stats', 'stream_writers',
  'suppress_key_server_warning', 'synchronous_backup_media_store', 'templates', 'third_party_event_rules',
  'threepid_behaviour_email', 'thumbnail_sizes', 'tls_certificate_path', 'tls_dh_params_path',
  'tls_fingerprints', 'tls_private_key_path', 'track_appservice_user_ips', 'track_puppeted_user_ips',
  'trust_identity_server_for_password_resets', 'trusted_key_servers', 'trusted_third_party_id_servers', 'turn_allow_guests',
  'turn_password', 'turn_shared_secret', 'turn_shared_secret_path', 'turn_uris',
  'turn_user_lifetime', 'turn_username', 'ui_auth', 'unsecure_port',
  'unused_expiration_time', 'update_user_directory', 'update_user_directory_from_worker', 'uploads_path',
  'url_preview_accept_language', 'url_preview_enabled', 'url_preview_ip_range_blacklist', 'url_preview_ip_range_whitelist',
  'url_preview_url_blacklist', 'use_account_validity_in_account_status', 'use_appservice_legacy_authorization', 'use_frozen_dicts',
  'use_insecure_ssl_client_just_for_testing_do_not_use', 'use_presence', 'user_agent_suffix', 'user_consent',
  'user_directory', 'user_ips_max_age', 'user_types', 'web_client',
  'web_client_location', 'worker_app', 'worker_daemonize', 'worker_listeners',
  'worker_log_config', 'worker_main_http_uri', 'worker_manhole', 'worker_name',
  'worker_pid_file', 'worker_replication_host', 'worker_replication_http_port', 'worker_replication_http_tls',
  'worker_replication_secret', 'worker_replication_secret_path',
]);

/**
 * Keys Axon reads that Synapse does not have. Documented in config/homeserver.yaml.
 *  - data_dir:  where Axon keeps on-disk data of its own (the embedded PostgreSQL).
 *  - log_level: a pino level (or Python level name) overriding the level read from log_config.
 */
export const AXON_KEYS: ReadonlySet<string> = new Set(['data_dir', 'log_level']);

/**
 * Synapse keys that Axon acts on (read into HomeserverConfig, or used to
 * validate other keys). Every other Synapse key present in a config is listed
 * once, in a single info line, as recognised but ignored. When a later feature
 * starts reading a key from `config.raw`, add it here.
 */
export const AXON_IMPLEMENTED_KEYS: Set<string> = new Set([
  'server_name', 'public_baseurl', 'pid_file', 'listeners', 'tls_certificate_path', 'tls_private_key_path',
  'database', 'databases', 'database_path', 'log_config',
  'signing_key_path', 'old_signing_keys', 'key_refresh_interval', 'trusted_key_servers', 'suppress_key_server_warning',
  'registration_shared_secret', 'registration_shared_secret_path', 'macaroon_secret_key', 'macaroon_secret_key_path',
  'form_secret', 'form_secret_path', 'enable_registration', 'disable_registration',
  'enable_registration_without_verification', 'registration_requires_token', 'allow_guest_access', 'password_config',
  'bcrypt_rounds',
  'turn_uris', 'turn_shared_secret', 'turn_shared_secret_path', 'turn_username', 'turn_password', 'turn_user_lifetime',
  'turn_allow_guests',
  'max_upload_size', 'media_store_path', 'max_image_pixels', 'enable_authenticated_media', 'dynamic_thumbnails',
  'thumbnail_sizes', 'url_preview_enabled', 'url_preview_ip_range_blacklist', 'url_preview_ip_range_whitelist',
  'max_spider_size', 'url_preview_url_blacklist', 'url_preview_accept_language',
  'max_pending_media_uploads', 'unused_expiration_time', 'rc_media_create', 'prevent_media_downloads_from',
  'push', 'start_pushers', 'ip_range_blacklist', 'ip_range_whitelist',
  'serve_server_wellknown', 'extra_well_known_client_content', 'presence', 'use_presence', 'default_room_version',
  'allow_device_name_lookup_over_federation', 'federation_domain_whitelist', 'federation_verify_certificates', 'federation_certificate_verification_whitelist',
  'federation_custom_ca_list', 'federation_client_minimum_tls_version', 'allow_public_rooms_over_federation', 'allow_public_rooms_without_auth',
  'user_directory', 'report_stats', 'admin_contact', 'require_auth_for_profile_requests',
  'limit_profile_requests_to_users_who_share_rooms', 'auto_join_rooms',
  'rc_message', 'rc_messages_per_second', 'rc_message_burst_count', 'rc_registration', 'rc_login', 'rc_joins',
  'rc_admin_redaction', 'rc_registration_token_validity', 'rc_joins_per_room', 'rc_invites', 'rc_presence',
  'rc_room_creation', 'rc_user_directory', 'rc_key_requests',
  'alias_creation_rules', 'room_list_publication_rules', 'require_membership_for_aliases', 'enable_room_list_search', 'block_non_admin_invites',
]);
