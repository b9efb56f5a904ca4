# Read a `genopred cv` run from R: predictions.csv with base R, summary.json with jsonlite
# (CRAN, or Debian's r-cran-jsonlite).
#
#     Rscript docs/examples/read_results.R results/wheat599-gblup
#
# Recomputes each fold's Pearson r from predictions.csv and checks it against summary.json (CI
# runs this against a run made by the pip-installed genopred).
args <- commandArgs(trailingOnly = TRUE)
run <- if (length(args) > 0) args[1] else "results/wheat599-gblup"

# One row per test prediction: id, fold, observed, predicted, repeat.
pred <- read.csv(file.path(run, "predictions.csv"), check.names = FALSE)
summary <- jsonlite::fromJSON(file.path(run, "summary.json"))

r <- sapply(split(pred, list(pred[["repeat"]], pred$fold), drop = TRUE),
            function(d) cor(d$observed, d$predicted))
print(summary$folds[, c("repeat", "fold", "n_test", "pearson", "mse", "ndcg")])
cat(sprintf("mean Pearson r over folds: %.4f (summary.json: %.4f)\n", mean(r), summary$metrics$pearson$mean))

# The same numbers both ways.
stopifnot(length(r) == nrow(summary$folds))
stopifnot(abs(mean(r) - summary$metrics$pearson$mean) < 1e-9)
