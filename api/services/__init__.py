"""The API's pluggable collaborators, as protocols, with their default implementations.

`create_app` takes any object satisfying each protocol; tests pass ones backed by the
in-process sandbox, the sync pipeline can plug its own flows in.
"""

from api.services.allegro import AllegroLoginStarter, DeviceFlowLoginStarter, LoginTicket
from api.services.delivery import DeliveredItem, Delivery, default_delivery
from api.services.sync import PrefectSyncLauncher, RunState, SyncLauncher
from api.services.wb import ConnectorWbVerifier, WbAccount, WbTokenVerifier

__all__ = [
    "AllegroLoginStarter",
    "ConnectorWbVerifier",
    "DeliveredItem",
    "Delivery",
    "DeviceFlowLoginStarter",
    "LoginTicket",
    "OutboxDelivery",
    "PrefectSyncLauncher",
    "RunState",
    "SyncLauncher",
    "WbAccount",
    "WbTokenVerifier",
    "default_delivery",
]
