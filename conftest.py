pytest_plugins = ["trcommon.testing"]
