from trcommon.settings import PG_SERVER, CommonSettings


class OrderSettings(CommonSettings):
    service_name: str = "order-service"
    database_url: str = f"{PG_SERVER}/orders_db"
    port: int = 8002
