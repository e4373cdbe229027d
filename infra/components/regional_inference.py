"""The inference service in one region: ECS Fargate behind an Application Load Balancer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.components._iam import objects, policy_document, service_trust_policy

#: The DR runbooks scale the service (standby <-> active) during failover and failback.
SCALED_BY_RUNBOOKS = ["desiredCount"]
#: TLS 1.3 and 1.2 only (the policy pack accepts these ELB policies).
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass(frozen=True)
class RegionalInferenceArgs:
    region: str
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    image: str
    #: The name clients use (the failover record): the HTTPS listener's certificate names it.
    dns_name: str
    #: The public zone of dns_name, where ACM's validation record goes.
    hosted_zone_id: pulumi.Input[str]
    container_port: int
    cpu: int
    memory: int
    health_path: str
    #: Tasks right after `pulumi up`: active capacity in the primary, standby (0 = pilot light) elsewhere.
    desired_count: int
    log_retention_days: int
    #: This region's dataset buckets and their keys: the only data the task may read.
    read_bucket_arns: Sequence[pulumi.Input[str]]
    read_key_arns: Sequence[pulumi.Input[str]]
    #: Where the model the service loads lives in this region.
    model_bucket: pulumi.Input[str]
    model_prefix: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)


class RegionalInference(pulumi.ComponentResource):
    """ECS cluster, Fargate service and ALB; the ALB's DNS name is the region's endpoint."""

    def __init__(
        self, name: str, args: RegionalInferenceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mldr:index:RegionalInference", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        region = args.region
        tags = {**args.tags, "mldr:region": region}

        alb_sg = aws.ec2.SecurityGroup(
            f"{name}-alb-sg",
            region=region,
            vpc_id=args.vpc_id,
            description=f"inference load balancer in {region}: HTTPS from clients, HTTP from checkers",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=port, to_port=port, cidr_blocks=["0.0.0.0/0"]
                )
                for port in (443, 80)
            ],
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"]
                )
            ],
            tags=tags,
            opts=child,
        )
        task_sg = aws.ec2.SecurityGroup(
            f"{name}-task-sg",
            region=region,
            vpc_id=args.vpc_id,
            description=f"inference tasks in {region}: only the load balancer may connect",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp",
                    from_port=args.container_port,
                    to_port=args.container_port,
                    security_groups=[alb_sg.id],
                )
            ],
            # Image pulls and S3 reads leave through the internet gateway.
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"]
                )
            ],
            tags=tags,
            opts=child,
        )
        self.load_balancer = aws.lb.LoadBalancer(
            f"{name}-alb",
            region=region,
            load_balancer_type="application",
            internal=False,
            subnets=list(args.subnet_ids),
            security_groups=[alb_sg.id],
            drop_invalid_header_fields=True,
            tags=tags,
            opts=child,
        )
        self.target_group = aws.lb.TargetGroup(
            f"{name}-tg",
            region=region,
            vpc_id=args.vpc_id,
            port=args.container_port,
            protocol="HTTP",
            target_type="ip",
            # Short drain: during a failover, old connections should not hold the switch up.
            deregistration_delay=30,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                path=args.health_path, matcher="200", interval=15, healthy_threshold=2, unhealthy_threshold=3
            ),
            tags=tags,
            opts=child,
        )
        self.listener = aws.lb.Listener(
            f"{name}-http",
            region=region,
            load_balancer_arn=self.load_balancer.arn,
            port=80,
            protocol="HTTP",
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=self.target_group.arn)
            ],
            tags=tags,
            opts=child,
        )

        # Clients reach inference by the failover name over HTTPS. The certificate names that
        # name only: the per-region HTTP listener above stays for the Route 53 health checks and
        # mldr's per-region probes, which address each load balancer by its own hostname
        # (infra/README.md, "HTTPS").
        certificate = aws.acm.Certificate(
            f"{name}-cert",
            region=region,
            domain_name=args.dns_name,
            validation_method="DNS",
            tags=tags,
            opts=child,
        )
        validation = certificate.domain_validation_options[0]
        validation_record = aws.route53.Record(
            f"{name}-cert-validation",
            zone_id=args.hosted_zone_id,
            name=validation.resource_record_name,
            type=validation.resource_record_type,
            records=[validation.resource_record_value],
            ttl=300,
            # ACM asks for the same record for this name in every region: both regions write it.
            allow_overwrite=True,
            opts=child,
        )
        validated = aws.acm.CertificateValidation(
            f"{name}-cert-validated",
            region=region,
            certificate_arn=certificate.arn,
            validation_record_fqdns=[validation_record.fqdn],
            opts=child,
        )
        self.https_listener = aws.lb.Listener(
            f"{name}-https",
            region=region,
            load_balancer_arn=self.load_balancer.arn,
            port=443,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=validated.certificate_arn,
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=self.target_group.arn)
            ],
            tags=tags,
            opts=child,
        )

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", region=region, retention_in_days=args.log_retention_days, tags=tags, opts=child
        )
        execution_role = aws.iam.Role(
            f"{name}-execution-role",
            description=f"ECS pulls the inference image and writes its logs in {region}",
            assume_role_policy=service_trust_policy("ecs-tasks.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition
        aws.iam.RolePolicyAttachment(
            f"{name}-execution-policy",
            role=execution_role.name,
            policy_arn=pulumi.Output.concat(
                "arn:", partition, ":iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
            ),
            opts=child,
        )
        self.task_role = aws.iam.Role(
            f"{name}-task-role",
            description=f"inference tasks in {region}: read this region's datasets, nothing else",
            assume_role_policy=service_trust_policy("ecs-tasks.amazonaws.com"),
            tags={**tags, "mldr:purpose": "inference"},
            opts=child,
        )
        self.task_policy = aws.iam.RolePolicy(
            f"{name}-task-policy",
            role=self.task_role.id,
            policy=policy_document(
                [
                    {
                        "Sid": "ListDatasets",
                        "Effect": "Allow",
                        "Action": ["s3:ListBucket"],
                        "Resource": list(args.read_bucket_arns),
                    },
                    {
                        "Sid": "ReadDatasets",
                        "Effect": "Allow",
                        "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                        "Resource": [objects(arn) for arn in args.read_bucket_arns],
                    },
                    {
                        "Sid": "DecryptDatasets",
                        "Effect": "Allow",
                        "Action": ["kms:Decrypt"],
                        "Resource": list(args.read_key_arns),
                        "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
                    },
                ]
            ),
            opts=child,
        )

        container = "inference"
        self.task_definition = aws.ecs.TaskDefinition(
            f"{name}-task",
            region=region,
            family=name,
            cpu=str(args.cpu),
            memory=str(args.memory),
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            execution_role_arn=execution_role.arn,
            task_role_arn=self.task_role.arn,
            container_definitions=pulumi.Output.json_dumps(
                [
                    {
                        "name": container,
                        "image": args.image,
                        "essential": True,
                        "portMappings": [{"containerPort": args.container_port, "protocol": "tcp"}],
                        "environment": [
                            {"name": "MLDR_REGION", "value": region},
                            {"name": "MLDR_MODEL_BUCKET", "value": args.model_bucket},
                            {"name": "MLDR_MODEL_PREFIX", "value": args.model_prefix},
                            {"name": "PORT", "value": str(args.container_port)},
                        ],
                        "logConfiguration": {
                            "logDriver": "awslogs",
                            "options": {
                                "awslogs-group": self.log_group.name,
                                "awslogs-region": region,
                                "awslogs-stream-prefix": container,
                            },
                        },
                    }
                ]
            ),
            tags=tags,
            opts=child,
        )
        self.cluster = aws.ecs.Cluster(f"{name}-cluster", region=region, tags=tags, opts=child)
        self.service = aws.ecs.Service(
            f"{name}-service",
            region=region,
            cluster=self.cluster.arn,
            task_definition=self.task_definition.arn,
            desired_count=args.desired_count,
            launch_type="FARGATE",
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=list(args.subnet_ids), security_groups=[task_sg.id], assign_public_ip=True
            ),
            load_balancers=[
                aws.ecs.ServiceLoadBalancerArgs(
                    target_group_arn=self.target_group.arn,
                    container_name=container,
                    container_port=args.container_port,
                )
            ],
            health_check_grace_period_seconds=60,
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(
                enable=True, rollback=True
            ),
            propagate_tags="SERVICE",
            # A standby region has no tasks to wait for; `pulumi up` must not block on it.
            wait_for_steady_state=False,
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                # ECS accepts a target group only once it is attached to a load balancer.
                depends_on=[self.listener],
                # After a failover the runbooks have scaled this service; a later `pulumi up`
                # must not silently scale the active region back down to standby.
                ignore_changes=SCALED_BY_RUNBOOKS,
            ),
        )
        self.endpoint_url = pulumi.Output.concat("http://", self.load_balancer.dns_name)
        self.register_outputs(
            {
                "endpointUrl": self.endpoint_url,
                "cluster": self.cluster.name,
                "service": self.service.name,
            }
        )
