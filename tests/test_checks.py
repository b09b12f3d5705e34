"""System checks: each misconfiguration gives its id and a hint."""

from django.core.checks import run_checks

from notifications.checks import check_deploy, check_settings


def ids(messages):
    return [m.id for m in messages]


def test_project_settings_pass():
    assert ids(check_settings()) == []


def test_non_positive_setting_is_an_error(settings):
    settings.NOTIFICATIONS_HEARTBEAT = 0
    (message,) = check_settings()
    assert message.id == "notifications.E001" and "NOTIFICATIONS_HEARTBEAT" in message.msg and message.hint


def test_missing_channel_layer_is_an_error(settings):
    settings.CHANNEL_LAYERS = {}
    assert "notifications.E002" in ids(check_settings())


def test_missing_asgi_application_warns(settings):
    del settings.ASGI_APPLICATION
    assert "notifications.W001" in ids(check_settings())


IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
REDIS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}


def test_in_memory_layer_with_several_workers_warns(monkeypatch, settings):
    settings.CHANNEL_LAYERS = IN_MEMORY
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    assert "notifications.W002" in ids(check_settings())
    settings.CHANNEL_LAYERS = REDIS
    assert "notifications.W002" not in ids(check_settings())


def test_gzip_middleware_warns(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.middleware.gzip.GZipMiddleware"]
    assert "notifications.W003" in ids(check_settings())


def test_deploy_check_warns_about_in_memory_layer(settings):
    settings.CHANNEL_LAYERS = IN_MEMORY
    assert ids(check_deploy()) == ["notifications.W004"]
    assert "notifications.W004" in ids(run_checks(include_deployment_checks=True, tags=["security"]))
    settings.CHANNEL_LAYERS = REDIS
    assert ids(check_deploy()) == []


def test_deploy_check_warns_when_open_files_are_below_the_stream_budget(settings):
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    settings.CHANNEL_LAYERS = REDIS
    settings.NOTIFICATIONS_MAX_STREAMS = soft
    assert "notifications.W005" in ids(check_deploy())
    settings.NOTIFICATIONS_MAX_STREAMS = max(1, soft - 1000)
    assert "notifications.W005" not in ids(check_deploy())



def test_server_side_cursors_behind_transaction_pooling_warn(monkeypatch, settings):
    from django.db import connections

    from notifications.checks import check_transaction_pooling

    settings.NOTIFICATIONS_TRANSACTION_POOLING = True
    monkeypatch.setitem(connections["default"].settings_dict, "DISABLE_SERVER_SIDE_CURSORS", False)
    (message,) = check_transaction_pooling()
    assert message.id == "notifications.W050" and "DISABLE_SERVER_SIDE_CURSORS" in message.hint


def test_prepared_statements_behind_transaction_pooling_warn(monkeypatch, settings):
    from django.db import connections

    from notifications.checks import check_transaction_pooling

    settings.NOTIFICATIONS_TRANSACTION_POOLING = True
    settings_dict = connections["default"].settings_dict
    monkeypatch.setitem(settings_dict, "DISABLE_SERVER_SIDE_CURSORS", True)
    monkeypatch.setitem(settings_dict, "OPTIONS", {**settings_dict.get("OPTIONS", {}), "prepare_threshold": 5})
    (message,) = check_transaction_pooling()
    assert message.id == "notifications.W051" and "prepare_threshold" in message.hint


def test_pooling_settings_the_readme_gives_pass(monkeypatch, settings):
    from django.db import connections

    from notifications.checks import check_transaction_pooling

    settings.NOTIFICATIONS_TRANSACTION_POOLING = True
    monkeypatch.setitem(connections["default"].settings_dict, "DISABLE_SERVER_SIDE_CURSORS", True)
    assert ids(check_transaction_pooling()) == []
