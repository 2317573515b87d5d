from trcommon.settings import PG_SERVER, CommonSettings


class EventSettings(CommonSettings):
    service_name: str = "event-service"
    database_url: str = f"{PG_SERVER}/events_db"
    port: int = 8003
