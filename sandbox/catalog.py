"""Products of a shop (small: tens to hundreds), built eagerly from the seed."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.hashing import h64, pick, randint, uuid_for

WB_WAREHOUSES: tuple[tuple[int, str, str], ...] = (
    (507, "Коледино", "Центральный"),
    (117986, "Казань", "Приволжский"),
    (686, "Новосибирск", "Сибирский"),
    (120762, "Электросталь", "Центральный"),
)
SELLER_WAREHOUSE = (1_000_001, "Склад продавца", "Центральный")

_NOUNS = ("Футболка", "Кружка", "Рюкзак", "Лампа", "Коврик", "Термос", "Шарф", "Чехол")
_ADJ = ("синяя", "классическая", "большая", "хлопковая", "походная", "уютная", "яркая")
_BRANDS = ("Nordika", "Polar Fox", "Umka", "Zaryad", "Kotik")
_PL_NOUNS = ("Kubek", "Plecak", "Lampka", "Koszulka", "Termos", "Etui", "Szalik")
_PL_ADJ = ("niebieski", "klasyczny", "duży", "bawełniany", "turystyczny", "kolorowy")
_SIZES = ("S", "M", "L", "XL")

_WB_STREAM = 0x1000
_AL_STREAM = 0x2000


@dataclass(frozen=True)
class WbSize:
    chrt_id: int
    tech_size: str
    barcode: str


@dataclass(frozen=True)
class WbProduct:
    nm_id: int
    imt_id: int
    vendor_code: str
    brand: str
    title: str
    subject_id: int
    subject: str
    category: str
    sizes: tuple[WbSize, ...]
    price: int  # roubles, before discount
    nm_uuid: str

    def photos(self) -> list[dict[str, str]]:
        base = f"https://basket-01.wbbasket.ru/vol{self.nm_id // 100000}/part{self.nm_id // 1000}/{self.nm_id}/images"
        kinds = ("big", "c246x328", "c516x688", "square", "tm")
        return [{k: f"{base}/{k}/{n}.webp" for k in kinds} for n in (1, 2)]


@dataclass(frozen=True)
class AllegroOffer:
    offer_id: str
    name: str
    external_id: str
    price: int  # grosze
    image: str


def wb_products(seed: int, shop_index: int, count: int) -> tuple[WbProduct, ...]:
    stream = _WB_STREAM + shop_index
    out = []
    for p in range(count):
        nm_id = 100_000_000 + shop_index * 1_000_000 + p * 37 + 11
        noun = pick(_NOUNS, seed, stream, p, 1)
        n_sizes = randint(seed, stream, p, 2, 1, 3)
        sizes = tuple(WbSize(nm_id * 10 + s, _SIZES[s], f"20{nm_id % 10**8:08d}{s:03d}") for s in range(n_sizes))
        out.append(
            WbProduct(
                nm_id=nm_id,
                imt_id=nm_id + 7_000_000,
                vendor_code=f"SP-{shop_index}-{p:04d}",
                brand=pick(_BRANDS, seed, stream, p, 3),
                title=f"{noun} {pick(_ADJ, seed, stream, p, 4)} {p}",
                subject_id=100 + h64(seed, stream, p, 5) % 50,
                subject=noun,
                category="Дом" if h64(seed, stream, p, 6) % 2 else "Одежда",
                sizes=sizes,
                price=randint(seed, stream, p, 7, 3, 60) * 100,
                nm_uuid=uuid_for(seed, stream, p, 8),
            )
        )
    return tuple(out)


def allegro_offers(seed: int, shop_index: int, count: int) -> tuple[AllegroOffer, ...]:
    stream = _AL_STREAM + shop_index
    out = []
    for p in range(count):
        offer_id = str(13_000_000_000 + shop_index * 10_000_000 + p * 101 + 7)
        name = f"{pick(_PL_NOUNS, seed, stream, p, 1)} {pick(_PL_ADJ, seed, stream, p, 2)} {p}"
        out.append(
            AllegroOffer(
                offer_id=offer_id,
                name=name,
                external_id=f"EXT-{shop_index}-{p:04d}",
                price=randint(seed, stream, p, 3, 1999, 49999),
                image=f"https://a.allegroimg.com/original/{offer_id}.jpg",
            )
        )
    return tuple(out)


def money(grosze: int) -> dict[str, str]:
    """Allegro money: amount is a string with two decimals."""
    sign = "-" if grosze < 0 else ""
    grosze = abs(grosze)
    return {"amount": f"{sign}{grosze // 100}.{grosze % 100:02d}", "currency": "PLN"}
