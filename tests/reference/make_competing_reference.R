# Aalen-Johansen reference values for tests/unit/test_competing.py (small synthetic data,
# stored literally in that test). Run: Rscript tests/reference/make_competing_reference.R
suppressPackageStartupMessages(library(survival))
time <- c(48, 6, 11, 14, 11, 48, 52, 35, 3, 6, 20, 26, 37, 29, 16, 10, 41, 44, 2, 7,
          27, 24, 53, 31, 25, 26, 40, 35, 11, 44, 45, 57, 47, 17, 19, 39, 39, 42, 52, 18)
cause <- c(0, 2, 1, 1, 2, 1, 1, 2, 0, 1, 1, 0, 1, 2, 0, 1, 1, 1, 1, 0,
           2, 1, 1, 2, 1, 2, 2, 0, 2, 1, 1, 0, 1, 1, 2, 1, 1, 1, 1, 0)
arm <- rep("b", 40); arm[c(2, 3, 5, 7, 11, 12, 13, 16, 27, 30, 32, 33, 34, 35, 36, 38)] <- "a"
d <- data.frame(time, cause = factor(cause, 0:2, c("censor", "returned", "retreated")), arm)
days <- c(10, 20, 30, 45)
show <- function(fit) {
  s <- summary(fit, times = days, extend = FALSE)
  strata <- if (is.null(s$strata)) rep("all", length(s$time)) else sub("arm=", "", as.character(s$strata))
  for (k in c("returned", "retreated")) {
    cat(sprintf("%s cause=%s day=%g cif=%.10f se=%.10f\n", strata, k, s$time,
                s$pstate[, match(k, s$states)], s$std.err[, match(k, s$states)]), sep = "")
  }
}
cat("R", R.version$major, R.version$minor, "survival", as.character(packageVersion("survival")), "\n")
show(survfit(Surv(time, cause) ~ 1, data = d))
show(survfit(Surv(time, cause) ~ arm, data = d))
