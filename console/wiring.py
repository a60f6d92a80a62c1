"""Settings -> Services: the one place that knows which setting feeds which service."""

from __future__ import annotations

from console.resolved import Resolved
from services.alerts import AlertsService
from services.audit import AuditService
from services.backups import BackupsService
from services.bundle import Services
from services.checklists import ChecklistService
from services.claims import ClaimsService
from services.dbcare import DbCareService
from services.health import BotHealthService
from services.incidents import IncidentsService
from services.kube import KubeService
from services.metrics import MetricsService
from services.nodes import NodesService
from services.orders import OrdersService
from services.overview import OverviewService
from services.panel import PanelService
from services.payments import PaymentsService
from services.postgres import PostgresConfig, PostgresService
from services.pricing import PricingService
from services.provisioner import ProvisionerService
from services.reconcile import ReconcileService
from services.saves import saves_service
from services.storage import StorageService


def build_services(settings: Resolved) -> Services:
    """Every service, configured from `settings`; nothing connects yet."""
    postgres = PostgresService(
        PostgresConfig(dsn=settings.plain("postgres_dsn"), read_dsn=settings.plain("postgres_read_dsn"))
    )
    storage = StorageService(
        settings.s3_endpoint,
        settings.plain("s3_access_key"),
        settings.plain("s3_secret_key"),
        settings.s3_bucket,
        use_ssl=settings.s3_use_ssl,
    )
    services = Services(
        postgres=postgres,
        kube=KubeService(settings.kubeconfig, settings.kube_context),
        metrics=MetricsService(settings.prometheus_url, settings.alertmanager_url),
        payments=PaymentsService(settings.plain("stripe_secret_key"), settings.stripe_api_base),
        storage=storage,
        panel=PanelService(settings.panel_url, settings.plain("ptero_app_key")),
        provisioner=ProvisionerService(settings.provisioner_url, settings.plain("provisioner_key")),
        bot=BotHealthService(settings.bot_url),
        overview=OverviewService(postgres),
        orders=OrdersService(postgres),
        nodes=NodesService(postgres),
        alerts=AlertsService(settings.prometheus_url, settings.alertmanager_url, postgres),
        incidents=IncidentsService(postgres),
        audit=AuditService(postgres),
        claims=ClaimsService(postgres),
        # VACUUM and REINDEX run as the maintenance login: the runtime role owns no table.
        dbcare=DbCareService(postgres, maintenance_dsn=settings.plain("restore_dsn")),
        backups=BackupsService(
            postgres,
            storage,
            dsn=settings.plain("postgres_dsn"),
            encryption_key=settings.plain("backup_encryption_key"),
            restore_dsn=settings.plain("restore_dsn"),
            retention_days=settings.backup_retention_days,
        ),
        saves=saves_service(
            settings.s3_endpoint,
            settings.plain("s3_access_key"),
            settings.plain("s3_secret_key"),
            settings.saves_bucket,
            use_ssl=settings.s3_use_ssl,
            retention_days=settings.backup_retention_days,
        ),
        pricing=PricingService(postgres, ceiling=settings.price_ceiling),
    )
    services.reconcile = ReconcileService(services.payments, postgres, services.alerts)
    services.checklists = ChecklistService(services)
    if services.payments.configured:
        services.alerts.webhook_endpoints = services.reconcile.endpoints
    services.alerts.backup_status = services.backups.status
    return services
